"""The MQTT topic tree between the cars and HQ, in one place (the table in docs/mqtt.md describes it).

    {prefix}/{vehicle}/{kind}       car -> HQ: events (read, hit, disposition, k9, heat, ...), status, position
    {prefix}/{vehicle}/watchlist    HQ -> one car: a watchlist update
    {prefix}/{vehicle}/cmd          HQ -> one car: a command
    {prefix}/fleet/watchlist        HQ -> every car: a watchlist update

Callers normalise the prefix (no leading or trailing '/') before they build or parse a topic.
"""

from __future__ import annotations

DEFAULT_PREFIX = "picar/v1"
FLEET = "fleet"  # the level in place of a vehicle id that addresses every car

STATUS = "status"
POSITION = "position"
WATCHLIST = "watchlist"
COMMAND = "cmd"
# Kinds the link itself uses: an event may not take one of them.
RESERVED_KINDS = frozenset({STATUS, POSITION, WATCHLIST, COMMAND})


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
