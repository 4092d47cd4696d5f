"""HQ's tools behind the console pages, on a real PostgreSQL and a real Mosquitto: watchlist publish (signed,
recorded only once the broker has it, applied by a car's real link and store), the list in force, and the
CSV exports (parsed back)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hw_sim.broker import Mosquitto, free_port
from picar.hq.exports import ANB_COLUMNS, BOM, K9_COLUMNS, k9_csv, reads_csv
from picar.hq.store import connect
from picar.hq.store.events import parse
from picar.hq.store.queries import k9_report, search_reads, watchlist_versions
from picar.hq.store.records import ReadQuery, Searcher
from picar.hq.store.writes import store_batch
from picar.hq.watchlists import Broker, PublishError, in_force, next_version, publish_snapshot
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.pipeline.events import read_payload
from picar.types import Fix, PlateRead
from picar.watchlist.signing import generate_keypair
from picar.watchlist.sync import UpdateResult, WatchlistStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def db(hq_dsn: str) -> Iterator[psycopg.Connection]:
    with connect(hq_dsn) as conn:
        yield conn


def broker_of(m: Mosquitto) -> Broker:
    return Broker(m.host, m.port, **m.credentials("hq"), timeout_s=10)


class Car:
    """A car's real HQ link and watchlist store, wired as the daemon wires them."""

    def __init__(self, name: str, tmp: Path, broker: Mosquitto, pub: Path) -> None:
        self.results: list[UpdateResult] = []
        self.changed = threading.Condition()
        self.store = WatchlistStore(tmp / name / "watchlist", public_key=pub)
        self.store.load()
        self.link = HqLink(name, broker.host, broker.port, Outbox(tmp / name / "outbox.db"),
                           **broker.link_kwargs(name), client_id=f"picar-{name}", on_command=self.on_command,
                           status_provider=lambda: {"watchlist_version": self.store.version})
        self.link.start()
        assert self.link.wait_ready(30)

    def on_command(self, topic: str, body: bytes) -> None:
        result = self.store.apply_update(body, origin=topic)
        with self.changed:
            self.results.append(result)
            self.changed.notify_all()

    def wait_version(self, version: int, timeout: float = 30) -> UpdateResult:
        with self.changed:
            assert self.changed.wait_for(lambda: any(r.version == version for r in self.results), timeout), \
                self.results
            return next(r for r in self.results if r.version == version)


def test_a_published_list_reaches_the_car_and_is_recorded(db: psycopg.Connection, tmp_path: Path) -> None:
    key, pub = generate_keypair(tmp_path / "hq")
    records = [{"plate": "AB123CD", "list": "stolen_vehicle"}, {"plate": "MD777AAA", "list": "wanted", "priority": 1,
                                                                "description": "Логан голубой"}]
    with Mosquitto(tmp_path, vehicles=["car-a", "car-b"]) as m:
        a, b = Car("car-a", tmp_path, m, pub), Car("car-b", tmp_path, m, pub)
        try:
            fleet = publish_snapshot(db, records, key=key, broker=broker_of(m), published_by="sup1", note="weekly")
            assert a.wait_version(fleet.version).accepted and b.wait_version(fleet.version).accepted
            assert {e.plate for e in a.store.current.entries()} == {"AB123CD", "MD777AAA"}
            one = publish_snapshot(db, records[:1], key=key, broker=broker_of(m), published_by="sup1",
                                   target="car-b")
            assert one.version > fleet.version and b.wait_version(one.version).accepted
            assert a.store.version == fleet.version and len(b.store.current) == 1
        finally:
            a.link.stop()
            b.link.stop()
    assert [(v.target, v.kind, v.entries, v.published_by) for v in watchlist_versions(db)] == [
        ("car-b", "snapshot", 1, "sup1"), ("fleet", "snapshot", 2, "sup1")]
    now_fleet, now_b = in_force(db), in_force(db, "car-b")
    assert now_fleet is not None and now_fleet.version.version == fleet.version
    assert now_fleet.records is not None and now_fleet.records[1]["description"] == "Логан голубой"
    assert now_b is not None and now_b.version.version == one.version and now_b.records == records[:1]
    assert next_version(db) > one.version


def test_nothing_is_recorded_when_the_broker_does_not_take_it(db: psycopg.Connection, tmp_path: Path) -> None:
    key, _ = generate_keypair(tmp_path / "hq")
    with pytest.raises(PublishError, match="broker 127.0.0.1"):
        publish_snapshot(db, [{"plate": "AB1"}], key=key, broker=Broker("127.0.0.1", free_port(), timeout_s=2),
                         published_by="sup1")
    with Mosquitto(tmp_path) as m, pytest.raises(PublishError, match="refused"):
        publish_snapshot(db, [{"plate": "AB1"}], key=key, published_by="sup1",
                         broker=Broker(m.host, m.port, username="hq", password="wrong", timeout_s=5))
    with pytest.raises(PublishError, match="the cars would refuse this list"):
        publish_snapshot(db, [{"plate": "AB1"}, {"plate": "AB-1"}], key=key, published_by="sup1",
                         broker=Broker("127.0.0.1", free_port(), timeout_s=2))
    assert watchlist_versions(db) == [] and in_force(db) is None


def a_read(event_id: str, plate: str, t: dt.datetime, vehicle: str = "car1", series: str | None = None) -> Any:
    fix = Fix(time=t.timestamp(), lat=47.0245, lon=28.8322, fix="3d")
    r = PlateRead(event_id, vehicle, "front", plate, 0.91, ((plate, 0.91),), t.timestamp(), t.timestamp() - 0.4,
                  t.timestamp(), 5, (10, 20, 90, 22), fix, region="md", series=series)
    return parse(vehicle, "read", json.dumps(read_payload(r)).encode())


def test_the_analysts_notebook_export_parses_back(db: psycopg.Connection) -> None:
    t1, t2 = NOW - dt.timedelta(hours=3), NOW - dt.timedelta(hours=1)
    events = [a_read("r1", "AB123CD", t1), a_read("r2", "AB123CD", t2, "car2", series="eu.fr_it")]
    store_batch(db, events)
    result = search_reads(db, ReadQuery(plate="AB123CD"), Searcher("ana", "=HYPERLINK(1)", "export test"))
    text = reads_csv(result.reads, "=HYPERLINK(1)")
    assert text.startswith(BOM) and "\r\n" in text
    rows = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    assert tuple(rows[0]) == ANB_COLUMNS and len(rows) == 3
    got = [dict(zip(ANB_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert [g["Event ID"] for g in got] == ["r2", "r1"]  # newest first, as the search
    assert dt.datetime.fromisoformat(got[1]["Date Time"]) == t1
    assert (got[1]["Date"], got[1]["Time"]) == (t1.date().isoformat(), t1.time().isoformat())
    assert got[0]["Date Time"].endswith("Z") and got[0]["Car"] == "car2" and got[0]["Plate"] == "AB123CD"
    assert (float(got[0]["Latitude"]), float(got[0]["Longitude"]), float(got[0]["Confidence"])) == (
        47.0245, 28.8322, 0.91)
    assert (got[0]["Region"], got[0]["Series"], got[1]["Series"]) == ("md", "eu.fr_it", "")  # r1 read as free text
    assert got[0]["Case Number"] == "'=HYPERLINK(1)"  # a formula is not run by a spreadsheet


def test_the_k9_report_csv(db: psycopg.Connection) -> None:
    start = {"event_id": "k9-d1-start", "event": "k9_start", "deployment_id": "d1", "dog": "Rex", "handler": "Ion",
             "type": "search", "case_number": "C-9", "notes": "склад", "trigger": "manual",
             "started_at": (NOW - dt.timedelta(hours=2)).isoformat(), "start_lat": 47.0, "start_lon": 28.8}
    end = {**start, "event_id": "k9-d1-end", "event": "k9_end", "ended_at": (NOW - dt.timedelta(hours=1)).isoformat(),
           "outcome": "found", "end_notes": "", "duration_s": 3600.0, "track_length_m": 950.0}
    events = [parse("car1", "k9", json.dumps(p).encode()) for p in (start, end)]
    store_batch(db, events)
    rows = list(csv.DictReader(io.StringIO(k9_csv(k9_report(db, NOW - dt.timedelta(days=1), NOW)).removeprefix(BOM))))
    assert list(rows[0]) == list(K9_COLUMNS)
    assert [(r["Car"], r["Dog"], r["Handler"], r["Outcome"], r["Duration (s)"], r["Notes"]) for r in rows] == [
        ("car1", "Rex", "Ion", "found", "3600", "склад")]
