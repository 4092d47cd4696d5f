"""The load generator of docs/scale.md, small: simulated cars with their own identities and outboxes against a real
Mosquitto, two real ingest workers and a real PostgreSQL; every event in the database once. And its check,
which must see a lost and a duplicated event when there is one."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from hw_sim.fleet_car import Behaviour
from hw_sim.fleet_check import Produced, check_database, summarise
from hw_sim.fleet_load import Plan, run
from picar.hq.store import connect
from picar.hq.store.events import parse
from picar.hq.store.writes import store_batch

pytestmark = pytest.mark.timeout(300)


def test_a_small_fleet_reaches_the_database_exactly_once(tmp_path: Path) -> None:
    plan = Plan(cars=6, minutes=0.3, workers=2, processes=2, out=tmp_path / "run", outbox_dir=tmp_path / "outboxes",
                behaviour=Behaviour(read_rate=2.0, hit_share=0.25, disposition_after_s=(1.0, 3.0)), drain_s=90,
                connect_spread_s=2.0, population=2000)
    report = run(plan)
    events = report["events"]
    kinds = {k["kind"]: k for k in events["by_kind"]}
    assert events["lost"] == 0 and events["duplicated"] == 0 and events["foreign"] == 0, events
    assert events["never_acknowledged"] == 0
    assert kinds["read"]["produced"] > 60 and kinds["read"]["stored"] == kinds["read"]["produced"]
    assert kinds["hit"]["produced"] > 0 and kinds["image"]["produced"] == 2 * kinds["hit"]["produced"]
    assert kinds["disposition"]["stored"] > 0
    counts = report["generator"]["counts"]
    assert counts["connects"] >= 6 and counts["ack_messages"] > 0
    assert report["positions"]["stored"] > 0.8 * report["positions"]["sent"] > 0  # QoS 0: counted, not promised
    assert 0 < report["lag_db_s"]["reads"]["p50"] <= report["lag_db_s"]["reads"]["p95"] < 30
    assert report["lag_e2e_s"]["n"] > 0
    assert set(report["cpu_during_load"]["cores"]) == {"postgres", "broker", "ingest", "generator"}
    assert all(v >= 0 for v in report["cpu_during_load"]["cores"].values())
    assert json.loads((plan.out / "report.json").read_text())["events"]["stored"] == events["stored"]
    assert len((plan.out / "timeline.jsonl").read_text().splitlines()) >= 3


def test_the_check_sees_a_lost_and_a_duplicated_event(hq_dsn: str) -> None:
    now = time.time()
    since = dt.datetime.fromtimestamp(now - 60, dt.UTC)

    def read(event_id: str, t: float) -> bytes:
        return json.dumps({"event_id": event_id, "plate": "C123AB",
                           "time": dt.datetime.fromtimestamp(t, dt.UTC).isoformat()}).encode()

    events = [parse("car0001", "read", read("r1", now)), parse("car0001", "read", read("r2", now)),
              # the same event id again with another time: a partitioned table's key cannot refuse it
              parse("car0001", "read", read("r2", now - 1)), parse("car0001", "read", read("stray", now))]
    with connect(hq_dsn) as conn:
        store_batch(conn, events)
        produced = Produced(ids={"read": {"r1", "r2", "r3"}})
        checks = check_database(conn, produced, ["car0001"], since)
    total = summarise(checks)
    assert (total["produced"], total["stored"], total["lost"], total["duplicated"], total["foreign"]) == (3, 3, 1, 1, 1)
