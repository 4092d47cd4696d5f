"""HQ's ingest against a real Mosquitto and a real PostgreSQL: cars' events stored once, acknowledged end to end
only after the commit, resent when HQ never got them, shared between workers, one of which may die."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hw_sim.broker import Mosquitto, Subscriber
from picar.hq.config import HqConfig, load_hq_config, parse_hq_config
from picar.hq.ingest.worker import IngestWorker
from picar.link.hq_ack import ack_payload, parse_ack
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.paths import EXAMPLE_CONFIG
from picar.pipeline.events import hit_payload, image_payload, read_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path, persistence=True) as b:
        yield b


def hq_config(dsn: str, broker: Mosquitto, worker: int = 1) -> HqConfig:
    return parse_hq_config({"database": {"dsn": dsn}, "ingest": {"worker": worker, "batch_wait_s": 0.02},
                            "mqtt": {"host": broker.host, "port": broker.port, "tls": False}})


@pytest.fixture
def ingest(hq_dsn: str, broker: Mosquitto) -> Iterator[IngestWorker]:
    worker = IngestWorker(hq_config(hq_dsn, broker), **broker.credentials("hq"))
    worker.start()
    yield worker
    worker.stop()


def car(broker: Mosquitto, outbox: Outbox, **kw: Any) -> HqLink:
    link = HqLink("car1", broker.host, broker.port, outbox, reconnect_min_s=0.1, reconnect_max_s=0.5,
                  **broker.link_kwargs("car1"), **kw)
    link.start()
    assert link.wait_ready(15)
    return link


def count(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


def a_read(i: int) -> PlateRead:
    t = time.time() - 5
    return PlateRead(f"read-{i}", "car1", "front", f"AB{i:03d}CD", 0.9, ((f"AB{i:03d}CD", 0.9),), t, t - 1, t, 4,
                     (1, 2, 3, 4), Fix(time=t, lat=47.0, lon=28.8, fix="3d"))


def test_a_cars_events_are_stored_once_and_it_lets_go_only_after_hqs_commit(
        hq_dsn: str, broker: Mosquitto, ingest: IngestWorker, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    link = car(broker, outbox)
    read = a_read(1)
    hit = Hit("hit-1", read, WatchEntry("AB001CD", "stolen_vehicle", 1), Match("exact", "AB001CD"), time.time())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = [("read", read_payload(read)), ("hit", hit_payload(hit)),
              ("image", image_payload(hit, "crop", b"\xff\xd8crop")),
              ("image", image_payload(hit, "frame", b"\xff\xd8frame")),
              ("disposition", {"event_id": "d-1", "hit_event_id": "hit-1", "decision": "accept", "reason": None,
                               "note": None, "vehicle": "car1", "time": now}),
              ("k9", {"event_id": "k9-x-start", "event": "k9_start", "deployment_id": "x", "dog": "Rex",
                      "started_at": now}),
              ("heat", {"event_id": "heat-1", "state": "alarm", "temp_c": 32.0, "since": time.time()})]
    for kind, payload in events:
        link.publish_event(kind, payload)
    assert link.publish_position(Fix(time=time.time(), lat=47.01, lon=28.81, fix="3d").to_json())
    def confirmed() -> bool:  # by HQ, whose database has every one (the broker's PUBACK comes first)
        items = [outbox.get(str(p["event_id"])) for _, p in events]
        return all(i is not None and i.hq_acked_at is not None for i in items)

    assert wait_until(confirmed, 30), link.stats()
    assert outbox.backlog() == 0
    assert outbox.hq_acks_from() == 1  # auto: the first acknowledgement switched the car to wait for HQ
    for table, n in (("reads", 1), ("hits", 1), ("images", 2), ("dispositions", 1), ("k9_deployments", 1),
                     ("heat_alarms", 1)):
        assert count(hq_dsn, f"SELECT count(*) FROM {table}") == n, table
    assert wait_until(lambda: count(hq_dsn, "SELECT count(*) FROM positions") == 1, 10)
    assert wait_until(lambda: count(hq_dsn, "SELECT count(*) FROM vehicles WHERE online AND id = 'car1'") == 1, 10)

    # The same event again (a resend after a lost PUBACK): stored once, acknowledged again.
    with Subscriber(broker, ["picar/v1/car1/ack"], identity="car1") as acks:
        acks.publish("picar/v1/car1/read", json.dumps(read_payload(read)))
        assert acks.wait_for(lambda ms: any("read-1" in parse_ack(m.payload) for m in ms), 15)
    assert count(hq_dsn, "SELECT count(*) FROM reads") == 1
    link.stop()
    outbox.close()


def test_the_car_resends_what_the_broker_took_but_hq_never_got(hq_dsn: str, broker: Mosquitto,
                                                               tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    link = car(broker, outbox, hq_ack="on", hq_ack_timeout_s=0.5, hq_ack_max_s=2.0)
    for i in range(10):  # no ingest has ever subscribed: the broker acknowledges each and drops it
        link.publish_event("read", read_payload(a_read(i)))
    assert link.wait_drained(15)
    assert outbox.backlog() == 10 and outbox.awaiting_hq() <= 10
    worker = IngestWorker(hq_config(hq_dsn, broker), **broker.credentials("hq"))
    worker.start()
    try:
        assert wait_until(lambda: outbox.backlog() == 0, 60), link.stats()
        assert count(hq_dsn, "SELECT count(DISTINCT event_id) FROM reads") == 10
        assert count(hq_dsn, "SELECT count(*) FROM reads") == 10
        assert link.stats()["resent_unconfirmed"] >= 10
    finally:
        worker.stop()
        link.stop()
        outbox.close()


def test_an_hq_that_never_acknowledges_leaves_the_car_as_it_was(broker: Mosquitto, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    link = car(broker, outbox)  # auto, and nobody acknowledges: the broker's PUBACK delivers
    for i in range(5):
        link.publish_event("read", read_payload(a_read(i)))
    assert link.wait_drained(15) and outbox.backlog() == 0 and outbox.hq_acks_from() is None
    link.stop()
    outbox.close()
    off = Outbox(tmp_path / "off.db")
    off.await_hq_acks(1)
    link = car(broker, off, hq_ack="off")  # off clears a wait left by an earlier mode
    assert off.hq_acks_from() is None and link.ack_topic not in link._subscriptions
    link.stop()
    off.close()


def test_a_message_hq_cannot_store_is_kept_and_acknowledged(hq_dsn: str, broker: Mosquitto,
                                                            ingest: IngestWorker) -> None:
    with Subscriber(broker, ["picar/v1/car1/ack"], identity="car1") as sub:
        sub.publish("picar/v1/car1/read", json.dumps({"event_id": "bad-1", "plate": 5, "time": "2026-11-23T10:00:00Z"}))
        sub.publish("picar/v1/car1/hit", b"\x00not json")
        assert sub.wait_for(lambda ms: any("bad-1" in parse_ack(m.payload) for m in ms), 15)
    assert wait_until(lambda: count(hq_dsn, "SELECT count(*) FROM rejected_events") == 2, 10)
    with psycopg.connect(hq_dsn) as conn:
        errors = dict(conn.execute("SELECT kind, error FROM rejected_events").fetchall())
    assert "plate" in errors["read"] and "not JSON" in errors["hit"]
    assert ingest.stats()["connected"]


def test_two_workers_share_the_fleet_and_one_may_die(hq_dsn: str, broker: Mosquitto, tmp_path: Path) -> None:
    creds = tmp_path / "hq.credentials"
    creds.write_text("username=hq\npassword=hq-password\n")
    config = tmp_path / "hq.toml"  # the broker gives a gone worker's share to the others after 3 s
    config.write_text(f'[database]\ndsn = "{hq_dsn}"\n[ingest]\nworker = 2\nsession_expiry_s = 3\n')
    second = [sys.executable, "-m", "picar.cli", "hq", "ingest", "--config", str(config), "--host", broker.host,
              "--port", str(broker.port), "--no-tls", "--credentials", str(creds)]
    log = (tmp_path / "worker2.log").open("wb")
    proc = subprocess.Popen(second, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    first = IngestWorker(hq_config(hq_dsn, broker), **broker.credentials("hq"))
    first.start()
    outbox = Outbox(tmp_path / "outbox.db")
    link = car(broker, outbox, hq_ack_timeout_s=2.0, hq_ack_max_s=4.0)
    try:
        assert wait_until(lambda: broker.log_count(r"picar-ingest-2") > 0, 60), (tmp_path / "worker2.log").read_text()
        n = 400
        for i in range(n // 2):
            link.publish_event("read", read_payload(a_read(i)))
        assert wait_until(lambda: count(hq_dsn, "SELECT count(*) FROM reads") >= n // 4, 60)
        proc.send_signal(signal.SIGKILL)  # mid-stream: what it held uncommitted comes back from the car
        proc.wait(10)
        for i in range(n // 2, n):
            link.publish_event("read", read_payload(a_read(i)))
        assert wait_until(lambda: outbox.backlog() == 0, 120), (link.stats(), first.stats())
        assert count(hq_dsn, "SELECT count(*) FROM reads") == n
        assert count(hq_dsn, "SELECT count(DISTINCT event_id) FROM reads") == n
        # Both took a share: the first worker did not store them all.
        assert 0 < first.stats().get("stored_read", 0) < n
    finally:
        if proc.poll() is None:
            proc.kill()
        link.stop()
        first.stop()
        outbox.close()


def test_hq_config_example_and_problems(tmp_path: Path) -> None:
    example = EXAMPLE_CONFIG.parent / "hq.example.toml"
    cfg = load_hq_config(example)
    assert cfg.mqtt.port == 8883 and cfg.retention.reads_days == 30 and cfg.ingest.worker == 1
    text = example.read_text()
    for section in ("database", "mqtt", "ingest", "retention"):  # every key is in the example, commented
        for key in getattr(cfg, section).__pydantic_fields__:
            assert f"{key} = " in text, f"{section}.{key} missing from {example.name}"
    bad = tmp_path / "hq.toml"
    bad.write_text('[database]\ndsn = "x"\n[retention]\nhits_days = 10\nimages_days = 20\n[ingest]\nbatchmax = 3\n')
    proc = subprocess.run([sys.executable, "-m", "picar.cli", "hq", "ingest", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    assert "retention.images_days = 20" in proc.stderr and "ingest.batchmax: unknown key" in proc.stderr
    assert "batch_max" in proc.stderr  # the did-you-mean


def test_ack_payload_round_trip_and_refusals() -> None:
    assert parse_ack(ack_payload(["a", "b"])) == ["a", "b"]
    for bad in (b"nope", b'{"events": "a"}', b'{"events": [1]}', b"[]"):
        with pytest.raises(ValueError, match="acknowledgement"):
            parse_ack(bad)


def test_the_configs_hq_ack_modes_are_the_links() -> None:
    from typing import get_args

    from picar.config.models import MqttConfig
    from picar.link.hq_ack import HQ_ACK_MODES

    assert get_args(MqttConfig.__pydantic_fields__["hq_ack"].annotation) == HQ_ACK_MODES


@pytest.mark.slow
def test_the_ingest_benchmark_drains_every_read(tmp_path: Path) -> None:
    from hw_sim.ingest_bench import bench

    res = bench(events=400, workers=2, workdir=tmp_path)
    assert res["stored"] == 400 and res["events_per_s"] > 0 and res["commit_span_s"] >= 0
