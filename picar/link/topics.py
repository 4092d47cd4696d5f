"""The MQTT topic tree between the cars and HQ, in one place (the table in docs/mqtt.md describes it).

    {prefix}/{vehicle}/{kind}       car -> HQ: events (read, hit, disposition, k9, heat, ...), status, position
    {prefix}/{vehicle}/watchlist    HQ -> one car: a watchlist update
    {prefix}/{vehicle}/cmd          HQ -> one car: a command
    {prefix}/{vehicle}/ack          HQ -> one car: the events HQ has committed to its database (end-to-end ack)
    {prefix}/fleet/watchlist        HQ -> every car: a watchlist update

`broker_acl()` is the Mosquitto ACL that enforces those directions per user (docs/mqtt.md, "Access
control"): a car's MQTT username is its vehicle id.

Callers normalise the prefix (no leading or trailing '/') before they build or parse a topic.
"""

from __future__ import annotations

DEFAULT_PREFIX = "picar/v1"
FLEET = "fleet"  # the level in place of a vehicle id that addresses every car

STATUS = "status"
POSITION = "position"
WATCHLIST = "watchlist"
COMMAND = "cmd"
ACK = "ack"
# Kinds the link itself uses: an event may not take one of them.
RESERVED_KINDS = frozenset({STATUS, POSITION, WATCHLIST, COMMAND, ACK})
# The events a car sends. The broker ACL lets a car write exactly these (plus status and position) under its
# own id, and Mosquitto drops any other publish without telling the car, so the link refuses other kinds.
EVENT_KINDS = ("read", "hit", "image", "disposition", "k9", "heat")
HQ_USER = "hq"  # HQ's MQTT username in the ACL; no vehicle may take it (nor FLEET) as its id
RESERVED_VEHICLE_IDS = frozenset({FLEET, HQ_USER})


def vehicle_topic(prefix: str, vehicle: str, kind: str) -> str:
    """``{prefix}/{vehicle}/{kind}``: what one car sends, or what HQ sends to that car alone."""
    return f"{prefix}/{vehicle}/{kind}"


def fleet_topic(prefix: str, kind: str) -> str:
    """``{prefix}/fleet/{kind}``: what HQ sends to every car."""
    return f"{prefix}/{FLEET}/{kind}"


def every_vehicle(prefix: str, kind: str = "#") -> str:
    """HQ's subscription to ``kind`` from every car (``#``: everything): ``{prefix}/+/{kind}``."""
    return f"{prefix}/+/{kind}"


def levels(topic: str, prefix: str) -> list[str] | None:
    """The levels of ``topic`` below ``{prefix}/`` (vehicle, kind, ...); None for a topic outside the tree."""
    head = prefix + "/"
    return topic[len(head):].split("/") if topic.startswith(head) else None


def car_grants(prefix: str, vehicle: str) -> tuple[list[str], list[str]]:
    """What one car may (write, read): its own events, status and position; its own watchlist, commands and
    acks and the fleet watchlist. Every broker's access rules are built from this and `hq_grants`."""
    writes = [vehicle_topic(prefix, vehicle, kind) for kind in (STATUS, POSITION, *EVENT_KINDS)]
    reads = [vehicle_topic(prefix, vehicle, WATCHLIST), vehicle_topic(prefix, vehicle, COMMAND),
             vehicle_topic(prefix, vehicle, ACK), fleet_topic(prefix, WATCHLIST)]
    return writes, reads


def hq_grants(prefix: str) -> tuple[list[str], list[str]]:
    """What HQ may (write, read): watchlists (fleet and per car), commands and acks; it reads everything."""
    writes = [every_vehicle(prefix, WATCHLIST), every_vehicle(prefix, COMMAND), every_vehicle(prefix, ACK)]
    return writes, [f"{prefix}/#"]


def broker_acl(prefix: str = DEFAULT_PREFIX, hq_user: str = HQ_USER) -> str:
    """The Mosquitto `acl_file` for this tree: each car (username = vehicle id, Mosquitto's `%u`) writes its
    own events, status and position and reads its own watchlist, commands and acks and the fleet watchlist;
    HQ reads everything and writes only watchlists, commands and acks. Anything not granted is refused."""
    car_writes, car_reads = car_grants(prefix, "%u")
    hq_writes, hq_reads = hq_grants(prefix)
    lines = [
        "# Each car: username = its vehicle id (%u). It writes only its own events, status and position",
        "# (never its own watchlist, cmd or ack: only HQ writes those) and reads its own watchlist, cmd and",
        "# ack and the fleet watchlist. `pattern` lines apply to every user, HQ's included.",
        *(f"pattern write {topic}" for topic in car_writes),
        *(f"pattern read {topic}" for topic in car_reads),
        "",
        "# HQ reads every car's topics and writes only watchlists (fleet and per car), commands and the",
        "# acknowledgements of what its database committed.",
        f"user {hq_user}",
        *(f"topic read {topic}" for topic in hq_reads),
        *(f"topic write {topic}" for topic in hq_writes),
    ]
    return "\n".join(lines) + "\n"
