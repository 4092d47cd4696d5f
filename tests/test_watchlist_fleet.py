"""Watchlist sync across a fleet, through a real Mosquitto and the cars' real HQ links."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

from hw_sim.broker import Mosquitto
from picar.hq.cli import publish_retained
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.watchlist.signing import generate_keypair, load_private_key, sign
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import snapshot_payload

FLEET_TOPIC = "picar/v1/fleet/watchlist"


class Car:
    """A vehicle's watchlist store behind its HQ link, wired as the daemon wires them."""

    def __init__(self, name: str, tmp: Path, broker: Mosquitto, pub: Path) -> None:
        self.name = name
        self.results: list[Any] = []
        self.changed = threading.Condition()
        self.store = WatchlistStore(tmp / name / "watchlist", public_key=pub, require_signature=True)
        self.store.load()
        self.outbox = Outbox(tmp / name / "outbox.db")
        self.broker = broker
        self.link: HqLink | None = None

    def on_command(self, topic: str, body: bytes) -> None:
        if topic.endswith("/watchlist"):
            result = self.store.apply_update(body, origin=topic)
            with self.changed:
                self.results.append(result)
                self.changed.notify_all()

    def online(self) -> None:
        self.link = HqLink(self.name, self.broker.host, self.broker.port, self.outbox,
                           **self.broker.link_kwargs(self.name),  # its own user (= vehicle id) under the ACL
                           client_id=f"picar-{self.name}", on_command=self.on_command,
                           status_provider=lambda: {"watchlist_version": self.store.version})
        self.link.start()
        assert self.link.wait_ready(30)

    def offline(self) -> None:
        assert self.link is not None
        self.link.stop()
        self.link = None

    def wait_results(self, n: int, timeout: float = 30) -> list[Any]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.results) >= n, timeout), (self.name, self.results)
            return list(self.results)

    def wait_reason(self, words: str, timeout: float = 30) -> Any:
        def found() -> Any:
            return next((r for r in self.results if words in r.reason.lower()), None)

        with self.changed:
            assert self.changed.wait_for(found, timeout), (self.name, [r.reason for r in self.results])
            return found()


def entries(*plates: str) -> list[dict[str, Any]]:
    return [{"plate": p, "list": "stolen_vehicle", "priority": 1} for p in plates]


def test_list_reaches_online_and_offline_cars_and_bad_updates_are_rejected(tmp_path: Path) -> None:
    key_base = tmp_path / "hq"
    _, pub = generate_keypair(key_base)
    key = load_private_key(Path(f"{key_base}.key"))
    with Mosquitto(tmp_path, persistence=True, vehicles=["car-a", "car-b"]) as broker:
        as_hq = broker.credentials("hq")  # only HQ may write the fleet watchlist
        a = Car("car-a", tmp_path, broker, pub)
        b = Car("car-b", tmp_path, broker, pub)
        a.online()
        b.online()  # b's persistent session exists; then it drives out of coverage
        b.offline()

        v1 = sign(snapshot_payload(entries("ABC123", "MD777XY"), version=1), key)
        publish_retained(v1, FLEET_TOPIC, broker.host, broker.port, **as_hq)
        (r,) = a.wait_results(1)
        assert r.accepted and a.store.version == 1
        assert a.store.current.match([("ABC123", 0.9)])
        assert b.store.version == 0

        b.online()  # back in coverage: the list arrives (retained, and queued in its persistent session)
        assert b.wait_results(1)[0].accepted and b.store.version == 1

        # Tampered: one byte of the signed payload changed.
        env = json.loads(sign(snapshot_payload(entries("ABC123", "EVIL1"), version=2), key))
        raw = bytearray(base64.b64decode(env["payload"]))
        raw[raw.index(b"EVIL1")] = ord("F")
        env["payload"] = base64.b64encode(bytes(raw)).decode()
        publish_retained(json.dumps(env).encode(), FLEET_TOPIC, broker.host, broker.port, **as_hq)
        # Unsigned: a bare snapshot with no envelope.
        unsigned = snapshot_payload(entries("UNSIGNED1"), version=3)
        publish_retained(unsigned, FLEET_TOPIC, broker.host, broker.port, **as_hq)
        for car in (a, b):
            assert not car.wait_reason("bad signature").accepted
            assert not car.wait_reason("unsigned").accepted
            assert [r.accepted for r in car.results].count(True) == 1
            assert car.store.version == 1
            assert car.store.current.match([("ABC123", 0.9)]) and not car.store.current.match([("UNSIGNED1", 0.9)])

        # The old list survives a restart of the car.
        a.offline()
        again = WatchlistStore(tmp_path / "car-a" / "watchlist", public_key=pub, require_signature=True)
        again.load()
        assert again.version == 1 and again.current.match([("MD777XY", 0.9)])
        b.offline()
