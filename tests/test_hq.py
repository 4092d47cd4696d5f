"""HqLink against a real Mosquitto: nothing is lost across broker down, broker SIGKILL, car SIGKILL."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hw_sim.hq_console import console_main, format_line, split_topic
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox, OutboxFullError
from picar.pipeline.events import hit_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from tests import broker as broker_helpers
from tests.broker import Mosquitto, Received, Subscriber, make_tls_files

ROOT = Path(__file__).resolve().parent.parent
mosquitto = broker_helpers.mosquitto  # the shared fixture, used here the way other test modules can
PREFIX = "picar/v1"


class LogWatch(logging.Handler):
    """Collects log records and lets a test wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[logging.LogRecord]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.records), timeout)


def watched_logger(name: str) -> tuple[logging.Logger, LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger(f"test.hq.{name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.handlers[:] = [watch]
    return logger, watch


def make_link(broker: Mosquitto, outbox: Outbox, vehicle: str = "car1", **kw: Any) -> HqLink:
    """The car's link with the vehicle's own certificate and credentials unless ``kw`` says otherwise."""
    kw.setdefault("reconnect_min_s", 0.1)
    kw.setdefault("reconnect_max_s", 0.5)
    for k, v in broker.link_kwargs(vehicle).items():
        kw.setdefault(k, v)
    return HqLink(vehicle, broker.host, broker.port, outbox, **kw)


def hq_console_args(broker: Mosquitto) -> list[str]:
    """hq_console's connection arguments: the broker, as HQ."""
    hq = broker.credentials("hq")
    return ["--host", broker.host, "--port", str(broker.port), "--username", hq["username"],
            "--password", hq["password"]]


def event_ids(msgs: list[Received], kind: str = "read") -> list[str]:
    return [m.json()["event_id"] for m in msgs if m.topic.endswith(f"/{kind}")]


def distinct_at_least(n: int, kind: str = "read") -> Callable[[list[Received]], bool]:
    return lambda msgs: len(set(event_ids(msgs, kind))) >= n


def first_appearances(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for e in ids:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path, persistence=True, vehicles=["car1", "car2", "car3", "car4"]) as b:
        yield b


@pytest.fixture
def hq_sub(broker: Mosquitto) -> Iterator[Subscriber]:
    """HQ's persistent-session subscriber, saved into the broker's database before the test starts."""
    sub = Subscriber(broker, [f"{PREFIX}/#"], client_id="hq-test", clean_session=False).start()
    broker.restart()  # graceful: the session (and its subscription) is now on disk
    assert sub.wait_subscribed(30)
    yield sub
    sub.stop()


def test_events_published_while_broker_is_down_arrive_in_order_after_it_starts(
    tmp_path: Path, broker: Mosquitto, hq_sub: Subscriber
) -> None:
    broker.stop()
    with Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob)
        # start() must return although nothing listens: it returns while the broker is still down.
        starter = threading.Thread(target=link.start)
        starter.start()
        starter.join(30)
        assert not starter.is_alive(), "HqLink.start() blocked waiting for a broker that is down"
        ids = [link.publish_event("read", {"plate": f"AB{i:03d}", "n": i}) for i in range(40)]
        assert not link.connected and link.backlog == 40
        broker.start()
        assert hq_sub.wait_for(distinct_at_least(40), 30)
        assert event_ids(hq_sub.messages) == ids  # in order, no duplicates on a first connection
        assert link.wait_drained(30) and link.backlog == 0
        link.stop()


def test_broker_sigkill_mid_stream_loses_no_event(tmp_path: Path, broker: Mosquitto, hq_sub: Subscriber) -> None:
    """Every event the broker had not acknowledged when it was SIGKILLed arrives after the restart.

    Mosquitto writes the PUBACK to the car before it writes the copy to the subscriber and persists only
    once a second, so a SIGKILL can destroy the last few events it had already acknowledged; no client
    can recover those (docs/mqtt.md). They are allowed to be missing only if the car really received
    their PUBACK from the dead broker, and there can be at most max_inflight of them.
    """
    total = 300
    logger, watch = watched_logger("brokerkill")
    with Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob, logger=logger)
        link.start()
        assert link.wait_ready(30)
        produced = [0]
        ids: list[str] = []

        def produce() -> None:
            for i in range(total):
                ids.append(link.publish_event("hit", {"plate": f"K{i:04d}", "list": "stolen_vehicle"}))
                produced[0] += 1

        producer = threading.Thread(target=produce)
        producer.start()
        assert hq_sub.wait_for(distinct_at_least(100, "hit"), 60)
        broker.kill()
        produced_at_kill = produced[0]
        # Once the car has noticed, it has read every PUBACK the dead broker sent.
        assert watch.wait_for(lambda r: any("lost connection" in x.getMessage() for x in r), 30)
        link.flush_acks()
        acked_by_dead_broker = {e for e in list(ids) if (it := ob.get(e)) is not None and it.acked_at is not None}
        broker.start()
        producer.join(120)
        assert not producer.is_alive(), f"only {produced[0]} of {total} events were stored"
        assert produced_at_kill < total, "the kill came too late to test anything"
        must_arrive = set(ids) - acked_by_dead_broker
        assert hq_sub.wait_for(lambda m: must_arrive <= set(event_ids(m, "hit")), 30), (
            f"missing: {sorted(must_arrive - set(event_ids(hq_sub.messages, 'hit')))[:10]}"
        )
        assert link.wait_drained(30) and link.backlog == 0
        got = event_ids(hq_sub.messages, "hit")
        assert set(got) <= set(ids)  # nothing invented: duplicates only by event_id
        lost_in_broker = set(ids) - set(got)
        assert lost_in_broker <= acked_by_dead_broker and len(lost_in_broker) <= link.max_inflight
        stats = link.stats()
        assert stats["connects"] >= 2 and stats["disconnects"] >= 1
        link.stop()


def _run_child(db: Path, port: int, total: int, password: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_hq", str(db), str(port), str(total), password],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )


def test_car_sigkilled_then_new_link_on_same_outbox_resumes_and_will_says_offline(
    tmp_path: Path, broker: Mosquitto, hq_sub: Subscriber
) -> None:
    total = 300
    db = tmp_path / "car.db"
    child = _run_child(db, broker.port, total, broker.users["car1"])
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert hq_sub.wait_for(distinct_at_least(30), 30)
        # Freeze the broker so the car is certainly mid-stream when it dies, then kill the car.
        broker.pause()
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        broker.resume()
        if child.poll() is None:
            child.kill()
            child.wait(10)

    def offline(msgs: list[Received]) -> bool:
        return any(m.topic == f"{PREFIX}/car1/status" and m.json()["state"] == "offline" for m in msgs)

    assert hq_sub.wait_for(offline, 30)  # the last will
    with Subscriber(broker, [f"{PREFIX}/car1/status"]) as fresh:
        assert fresh.wait_for(lambda m: len(m) >= 1, 30)
        assert fresh.messages[0].retain and fresh.messages[0].json()["state"] == "offline"
        assert fresh.messages[0].json()["reason"] == "connection lost"

    with Outbox(db) as ob:
        left = ob.backlog()
        assert 0 < left < total, f"backlog after the kill: {left}"
        link = make_link(broker, ob)
        link.start()
        assert hq_sub.wait_for(distinct_at_least(total), 30)
        assert link.wait_drained(30) and ob.backlog() == 0
        link.stop()
    ids = event_ids(hq_sub.messages)
    assert first_appearances(ids) == [f"ev-{i:04d}" for i in range(total)]
    assert len(ids) - total <= 20  # duplicates: at most what was in flight when the car died


def test_at_most_max_inflight_unacknowledged_publishes(tmp_path: Path, broker: Mosquitto, hq_sub: Subscriber) -> None:
    logger, watch = watched_logger("window")
    with Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob, max_inflight=5, logger=logger)
        link.start()
        assert link.wait_ready(30)
        broker.pause()  # the connection stays up but no PUBACK comes back
        try:
            ids = [link.publish_event("read", {"n": i}) for i in range(30)]
            assert watch.wait_for(lambda r: any("window full" in x.getMessage() for x in r), 30)
            handed = [e for e in ids if (item := ob.get(e)) is not None and item.sent_at is not None]
            assert handed == ids[:5]
            assert link.stats()["inflight"] == 5 and link.backlog == 30
        finally:
            broker.resume()
        assert hq_sub.wait_for(distinct_at_least(30), 30)
        assert event_ids(hq_sub.messages) == ids
        assert link.wait_drained(30)
        link.stop()


def test_persistent_session_delivers_commands_sent_while_car_was_away(tmp_path: Path, broker: Mosquitto) -> None:
    received: list[tuple[str, bytes]] = []
    cond = threading.Condition()

    def on_command(topic: str, payload: bytes) -> None:
        with cond:
            received.append((topic, payload))
            cond.notify_all()

    with Outbox(tmp_path / "car.db") as ob:
        first = make_link(broker, ob, on_command=on_command)
        first.start()
        assert first.wait_ready(30)
        first.stop()
        with Subscriber(broker, []) as hq:
            hq.publish(f"{PREFIX}/car1/cmd", b'{"cmd":"sync"}', qos=1)
            hq.publish(f"{PREFIX}/fleet/watchlist", b'{"version":7}', qos=1)
            hq.publish(f"{PREFIX}/car2/cmd", b'{"cmd":"not for car1"}', qos=1)
        broker.restart()  # the queued messages survive a broker restart too (persistence)
        second = make_link(broker, ob, on_command=on_command)
        second.start()
        with cond:
            assert cond.wait_for(lambda: len(received) >= 2, 30)
        assert sorted(received) == [
            (f"{PREFIX}/car1/cmd", b'{"cmd":"sync"}'),
            (f"{PREFIX}/fleet/watchlist", b'{"version":7}'),
        ]
        second.stop()


def test_status_retained_online_then_offline_and_positions_only_while_connected(
    tmp_path: Path, broker: Mosquitto
) -> None:
    with Outbox(tmp_path / "car.db") as ob:
        link = make_link(
            broker, ob, status_provider=lambda: {"cameras": 2, "state": "ignored"}, clock=lambda: 1_700_000_000.0
        )
        assert link.publish_position({"lat": 1.0, "lon": 2.0}) is False  # not connected: dropped, counted
        link.start()
        assert link.wait_ready(30)
        with Subscriber(broker, [f"{PREFIX}/car1/#"]) as sub:
            assert sub.wait_for(lambda m: any(x.topic.endswith("/status") for x in m), 30)
            status = next(x for x in sub.messages if x.topic.endswith("/status"))
            assert status.json() == {
                "cameras": 2, "state": "online", "vehicle": "car1", "time": "2023-11-14T22:13:20.000Z",
                "version": link.version, "backlog": 0,
            }
            assert link.publish_position({"lat": 52.1, "lon": 4.3, "fix": "3d"})
            assert sub.wait_for(lambda m: any(x.topic.endswith("/position") for x in m), 30)
            stats = link.stats()
            assert stats["positions_sent"] == 1 and stats["positions_dropped"] == 1
        with Subscriber(broker, [f"{PREFIX}/car1/status"]) as late:  # a late subscriber gets it retained
            assert late.wait_for(lambda m: len(m) >= 1, 30)
            assert late.messages[0].retain and late.messages[0].json()["state"] == "online"
        link.stop()
    with Subscriber(broker, [f"{PREFIX}/car1/status"]) as after:
        assert after.wait_for(lambda m: len(m) >= 1, 30)
        assert after.messages[0].retain
        assert after.messages[0].json()["state"] == "offline"
        assert after.messages[0].json()["reason"] == "shutdown"


def test_tls_client_certificate_and_password(tmp_path: Path) -> None:
    with Mosquitto(tmp_path, tls=True, users={"car1": "s3cret", "hq": "hqpw"}) as broker:
        with Subscriber(broker, [f"{PREFIX}/#"], username="hq", password="hqpw") as hq, \
                Outbox(tmp_path / "car.db") as ob:
            link = make_link(broker, ob, username="car1", password="s3cret")
            link.start()
            eid = link.publish_event("hit", {"plate": "TLS123"})
            assert hq.wait_for(lambda m: eid in event_ids(m, "hit"), 30)
            assert link.wait_drained(30)
            link.stop()

        logger, watch = watched_logger("badpw")
        with Outbox(tmp_path / "bad.db") as ob:
            bad = make_link(broker, ob, username="car1", password="wrong", logger=logger,
                            reconnect_min_s=0.2, reconnect_max_s=5)
            started = time.monotonic()
            bad.start()
            kept = bad.publish_event("hit", {"plate": "NOTSENT"})
            assert watch.wait_for(lambda r: len([x for x in r if "refused" in x.getMessage()]) >= 3, 30)
            bad.stop(timeout=0.1)
            assert [i.event_id for i in ob.pending(10)] == [kept]  # what was not acknowledged stays
        refusals = [r for r in watch.records if "refused" in r.getMessage()]
        first = refusals[0].getMessage()
        assert f"{broker.host}:{broker.port}" in first
        assert "username" in first and ("Not authorized" in first or "Bad user name" in first)
        assert refusals[0].levelno == logging.ERROR
        assert all(r.levelno == logging.DEBUG for r in refusals[1:])  # said once, loudly
        # back-off, not a hot loop: waits of 0.2 s then 0.4 s between the three attempts
        assert refusals[2].created - refusals[0].created >= 0.5
        assert time.monotonic() - started >= 0.5


def test_the_acl_lets_a_car_do_its_job(tmp_path: Path) -> None:
    """The broker runs the documented ACL (tests/test_broker_acl.py checks it is the same text)."""
    received: list[tuple[str, bytes]] = []
    cond = threading.Condition()

    def on_command(topic: str, payload: bytes) -> None:
        with cond:
            received.append((topic, payload))
            cond.notify_all()

    with Mosquitto(tmp_path, users={"car1": "pw", "hq": "hqpw"}) as broker, \
            Subscriber(broker, [f"{PREFIX}/#"], username="hq", password="hqpw") as hq, \
            Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob, username="car1", password="pw", on_command=on_command)
        link.start()
        assert link.wait_ready(30)
        eid = link.publish_event("hit", {"plate": "ACL1"})
        assert hq.wait_for(lambda m: eid in event_ids(m, "hit"), 30)
        assert any(m.topic == f"{PREFIX}/car1/status" for m in hq.messages)
        hq.publish(f"{PREFIX}/car1/cmd", b"c1")
        hq.publish(f"{PREFIX}/fleet/watchlist", b"w1")
        with cond:
            assert cond.wait_for(lambda: len(received) >= 2, 30)
        assert sorted(received) == [(f"{PREFIX}/car1/cmd", b"c1"), (f"{PREFIX}/fleet/watchlist", b"w1")]
        link.stop()


def test_tls_with_wrong_ca_is_logged_as_a_tls_failure(tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other-ca")
    logger, watch = watched_logger("badca")
    with Mosquitto(tmp_path, tls=True) as broker, Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob, ca_file=str(other.ca_file), logger=logger)
        link.start()
        assert watch.wait_for(lambda r: any(x.levelno == logging.ERROR for x in r), 30)
        link.stop(timeout=0.1)
    error = next(r for r in watch.records if r.levelno == logging.ERROR).getMessage()
    assert "TLS certificate verification failed" in error and f"{broker.host}:{broker.port}" in error


def test_a_failing_command_handler_is_logged_and_the_link_keeps_working(tmp_path: Path, broker: Mosquitto) -> None:
    logger, watch = watched_logger("cmdfail")
    seen: list[bytes] = []
    cond = threading.Condition()

    def on_command(topic: str, payload: bytes) -> None:
        with cond:
            seen.append(payload)
            cond.notify_all()
        if payload == b"bad":
            raise ValueError("cannot parse command")

    with Outbox(tmp_path / "car.db") as ob, Subscriber(broker, [f"{PREFIX}/car1/hit"]) as hq:
        link = make_link(broker, ob, on_command=on_command, logger=logger)
        link.start()
        assert link.wait_ready(30)
        hq.publish(f"{PREFIX}/car1/cmd", b"bad")
        hq.publish(f"{PREFIX}/car1/cmd", b"good")
        with cond:
            assert cond.wait_for(lambda: seen == [b"bad", b"good"], 30)
        failures = [r for r in watch.records if r.levelno == logging.ERROR]
        assert len(failures) == 1 and f"{PREFIX}/car1/cmd" in failures[0].getMessage()
        assert failures[0].exc_info is not None
        eid = link.publish_event("hit", {"plate": "STILL1"})
        assert hq.wait_for(lambda m: eid in event_ids(m, "hit"), 30)
        link.stop()


def test_publish_event_reports_a_full_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path / "car.db", max_size_bytes=48 * 1024) as ob:
        link = HqLink("car1", "127.0.0.1", 1883, ob)
        stored = []
        with pytest.raises(OutboxFullError):
            for i in range(500):
                stored.append(link.publish_event("read", {"blob": "x" * 1500, "i": i}))
        assert ob.backlog() == len(stored) > 0


@pytest.mark.parametrize("kind", ["status", "position", "cmd", "watchlist", "a/b", "", "x+", "alert"])
def test_event_kind_must_be_one_plain_topic_level(tmp_path: Path, kind: str) -> None:
    with Outbox(tmp_path / "car.db") as ob:
        link = HqLink("car1", "127.0.0.1", 1, ob)
        with pytest.raises(ValueError, match="kind"):
            link.publish_event(kind, {"a": 1})
        assert ob.backlog() == 0


def test_constructor_rejects_bad_settings(tmp_path: Path) -> None:
    with Outbox(tmp_path / "car.db") as ob:
        with pytest.raises(ValueError, match="vehicle_id"):
            HqLink("car/1", "h", 1, ob)
        for reserved in ("fleet", "hq"):  # the fleet level, and HQ's username in the broker ACL
            with pytest.raises(ValueError, match="reserved"):
                HqLink(reserved, "h", 1, ob)
        with pytest.raises(ValueError, match="port"):
            HqLink("car1", "h", 0, ob)
        with pytest.raises(ValueError, match="keepalive_s"):
            HqLink("car1", "h", 1883, ob, keepalive_s=0)
        with pytest.raises(ValueError, match="max_inflight"):
            HqLink("car1", "h", 1883, ob, max_inflight=0)
        with pytest.raises(ValueError, match="topic_prefix"):
            HqLink("car1", "h", 1883, ob, topic_prefix="picar/+")
        with pytest.raises(ValueError, match="tls is false"):
            HqLink("car1", "h", 1, ob, ca_file="/x")
        with pytest.raises(ValueError, match="TLS files"):
            HqLink("car1", "h", 1, ob, tls=True, ca_file=tmp_path / "missing.crt")


# ---- HQ console ----------------------------------------------------------------------------------------


def test_console_formats_hits_positions_and_status_on_one_line() -> None:
    fix = Fix(datetime(2023, 11, 14, 22, 13, 19, tzinfo=UTC), 52.3702157, 4.8951679, "3d")
    read = PlateRead("r-1", "car7", "front", "AB12CDE", 0.93, (("AB12CDE", 0.93),), 1_700_000_000.0,
                     1_699_999_999.0, 1_700_000_000.0, 5, (1, 2, 3, 4), fix)
    hit = Hit("0123456789abcdef", read, WatchEntry("AB12CDE", list="stolen_vehicle"),
              Match("confusable", "AB12CDE", 1, ((2, "1", "I"),)), raised_at=1_700_000_001.0)
    line = format_line(f"{PREFIX}/car7/hit", json.dumps(hit_payload(hit)).encode(), PREFIX, received_at=0.0)
    assert line.split() == [
        "2023-11-14T22:13:20.000Z", "car7", "hit", "AB12CDE", "list=stolen_vehicle",
        "match=confusable", "(pos", "3:", "read", "1", "listed", "I)", "52.37022,4.89517", "id=01234567",
    ]
    position = format_line(f"{PREFIX}/car7/position", json.dumps(fix.to_json()).encode(), PREFIX, 0.0)
    assert position.split()[:4] == ["2023-11-14T22:13:19Z", "car7", "position", "52.37022,4.89517"]
    nested = json.dumps({"read": {"text": "XY99", "fix": {"lat": 1.5, "lon": -2.25}},
                         "entry": {"list": "wanted"}, "match": "exact"}).encode()
    assert "XY99" in format_line(f"{PREFIX}/car7/hit", nested, PREFIX, 0.0, dup=True)
    assert format_line(f"{PREFIX}/car7/hit", nested, PREFIX, 0.0, dup=True).endswith("1.50000,-2.25000  dup")
    status = format_line(f"{PREFIX}/car7/status", b'{"state":"offline","reason":"shutdown"}', PREFIX, 0.0)
    assert "state=offline" in status and "reason=shutdown" in status
    assert "not a JSON object" in format_line(f"{PREFIX}/car7/read", b"\xff\x00", PREFIX, 0.0)
    assert split_topic(f"{PREFIX}/fleet/watchlist", PREFIX) == ("fleet", "watchlist")


def test_console_exits_zero_after_n_distinct_hits(tmp_path: Path, broker: Mosquitto) -> None:
    with Outbox(tmp_path / "car.db") as ob:
        link = make_link(broker, ob)
        link.start()
        assert link.wait_ready(30)
        console = subprocess.Popen(
            [sys.executable, "-m", "hw_sim.hq_console", *hq_console_args(broker), "--until-hits", "2",
             "--timeout", "20"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert console.stdout is not None
            first = console.stdout.readline()  # the car's retained status: the console is subscribed
            assert "car1" in first and "state=online" in first
            eid = link.publish_event("hit", {"plate": "HIT001", "list": "stolen_vehicle", "match": "exact"})
            with Subscriber(broker, [], identity="car1") as car1:  # a redelivered duplicate must not count twice
                car1.publish(f"{PREFIX}/car1/hit", json.dumps({"event_id": eid, "plate": "HIT001"}))
                link.publish_event("read", {"plate": "READ01"})
                link.publish_event("hit", {"plate": "HIT002", "list": "wanted", "lat": 51.5, "lon": -0.12})
                out, err = console.communicate(timeout=20)
        finally:
            if console.poll() is None:
                console.kill()
                console.wait(30)
        link.stop()
    assert console.returncode == 0, err
    lines = [first, *out.splitlines()]
    assert sum("HIT001" in x for x in lines) == 2 and sum("dup" in x for x in lines) == 1
    assert any("HIT002" in x and "list=wanted" in x and "51.50000,-0.12000" in x for x in lines)


def test_console_timeout_without_enough_hits_exits_one(mosquitto: Mosquitto) -> None:
    started = time.monotonic()
    rc = console_main([*hq_console_args(mosquitto), "--until-hits", "1", "--timeout", "0.5"], out=io.StringIO())
    assert rc == 1 and time.monotonic() - started >= 0.5


def test_console_stops_cleanly_on_sigterm(broker: Mosquitto) -> None:
    with Subscriber(broker, [], identity="car4") as car4:
        car4.publish(f"{PREFIX}/car4/status", b'{"state":"online"}', retain=True)
    console = subprocess.Popen(
        [sys.executable, "-m", "hw_sim.hq_console", *hq_console_args(broker)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert console.stdout is not None
        assert "car4" in console.stdout.readline()
        console.send_signal(signal.SIGTERM)
        assert console.wait(30) == 0
    finally:
        if console.poll() is None:
            console.kill()
            console.wait(30)
        for stream in (console.stdout, console.stderr):
            if stream is not None:
                stream.close()


def test_console_json_lines(broker: Mosquitto) -> None:
    with Subscriber(broker, [], identity="car3") as car3:
        car3.publish(f"{PREFIX}/car3/hit", json.dumps({"event_id": "h1", "plate": "J1"}), retain=True)
    out = io.StringIO()
    rc = console_main([*hq_console_args(broker), "--json", "--until-hits", "1", "--timeout", "10"], out=out)
    assert rc == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rows == [{"topic": f"{PREFIX}/car3/hit", "vehicle": "car3", "kind": "hit", "retain": True,
                     "payload": {"event_id": "h1", "plate": "J1"}}]


def test_console_over_tls_with_client_certificate_and_credentials_file(tmp_path: Path) -> None:
    creds = tmp_path / "hq.credentials"
    creds.write_text("# HQ console\nusername=hq\npassword=hqpw\n")
    with Mosquitto(tmp_path, tls=True, users={"hq": "hqpw", "car9": "car9pw"}) as broker:
        assert broker.tls is not None
        with Subscriber(broker, [], username="car9", password="car9pw") as car9:
            car9.publish(f"{PREFIX}/car9/hit", json.dumps({"event_id": "t1", "plate": "TLS9"}), retain=True)
        out = io.StringIO()
        rc = console_main(["--host", broker.host, "--port", str(broker.port), "--ca", str(broker.tls.ca_file),
                           "--cert", str(broker.tls.client("hq").cert_file),
                           "--keyfile", str(broker.tls.client("hq").key_file),
                           "--credentials", str(creds), "--until-hits", "1", "--timeout", "10"], out=out)
        assert rc == 0 and "TLS9" in out.getvalue()
        bad = tmp_path / "bad.credentials"
        bad.write_text("user=hq\n")
        assert console_main(["--host", broker.host, "--port", str(broker.port), "--credentials", str(bad)]) == 2


def _child_main(argv: list[str]) -> int:
    """Run by the SIGKILL test: fill the outbox, start sending, wait to be killed."""
    db, port, total, password = Path(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    ob = Outbox(db)
    link = HqLink("car1", "127.0.0.1", port, ob, max_inflight=5, reconnect_min_s=0.1, reconnect_max_s=0.5,
                  username="car1", password=password)
    for i in range(total):
        link.publish_event("read", {"plate": f"P{i:04d}", "n": i}, event_id=f"ev-{i:04d}")
    link.start()
    print("ready", flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))


def test_a_command_is_acknowledged_only_once_handled_so_the_broker_resends_it(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The car stops while a watchlist update is being applied: no PUBACK went out, the broker resends it."""
    from picar.link.commands import HqCommands

    class SlowList:
        """A watchlist store whose apply blocks until the test lets it go."""

        def __init__(self) -> None:
            self.entered, self.release, self.bodies = threading.Event(), threading.Event(), []

        def apply_update(self, body: bytes, origin: str) -> Any:
            self.bodies.append(body)
            self.entered.set()
            self.release.wait(30)
            return type("Result", (), {"accepted": True})()

    with Outbox(tmp_path / "car.db") as ob:
        slow = SlowList()
        first = make_link(broker, ob, on_command=HqCommands(slow, on_new_list=lambda: None).on_command)  # type: ignore[arg-type]
        first.start()
        assert first.wait_ready(30)
        with Subscriber(broker, []) as hq:  # not retained: only the session can bring it back
            hq.publish(f"{PREFIX}/car1/watchlist", b'{"version":8}', qos=1)
        assert slow.entered.wait(30)
        assert first.wait_ready(1)  # the network thread is free while the list is applied
        first.stop(timeout=1.0)  # the car stops mid-apply
        slow.release.set()
        again = SlowList()
        again.release.set()
        second = make_link(broker, ob, on_command=HqCommands(again, on_new_list=lambda: None).on_command)  # type: ignore[arg-type]
        second.start()
        assert again.entered.wait(30), "the unacknowledged command was not delivered again"
        assert again.bodies == [b'{"version":8}']
        second.stop()
