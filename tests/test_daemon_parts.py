"""The parts the Daemon composes, each on its own: the sink, the officer's actions, HQ's commands, the status."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from picar.link.commands import HqCommands
from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher
from picar.pipeline.sink import ReadSink
from picar.pipeline.store import Store
from picar.pipeline.tracker import VotedRead
from picar.station.actions import OfficerActions
from picar.status import StatusReport
from picar.types import REJECT_REASONS, Hit, Match, PlateRead, WatchEntry
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import snapshot_payload
from tests.tinyfs import fill, tiny_tmpfs
from tests.waiting import wait_until


def a_read(event_id: str = "r1", text: str = "MD123AB", t: float | None = None) -> PlateRead:
    t = time.time() if t is None else t
    return PlateRead(event_id=event_id, vehicle_id="car1", camera="front", text=text, confidence=0.9,
                     candidates=((text, 0.9),), captured_at=t, first_seen=t, last_seen=t, frames=3,
                     box=(0, 0, 10, 5), fix=None)


def a_vote(read: PlateRead) -> VotedRead:
    img = np.full((20, 40, 3), 128, np.uint8)
    return VotedRead(camera=read.camera, text=read.text, confidence=read.confidence, candidates=read.candidates,
                     chars=(), captured_at=read.captured_at, capture_monotonic=0.0, first_seen=read.first_seen,
                     last_seen=read.last_seen, frames=read.frames, box=read.box, crop=img, frame=img)


def a_hit(read: PlateRead, event_id: str = "h1", covert: bool = False) -> Hit:
    return Hit(event_id, read, WatchEntry(read.text, "stolen_vehicle", 1, covert=covert),
               Match("exact", read.text), raised_at=time.time())


@pytest.fixture
def parts(tmp_path: Path) -> Any:
    store = Store(tmp_path / "d", min_free_mb=0)
    outbox = Outbox(tmp_path / "d" / "outbox.db")
    publisher = EventPublisher(outbox, None, "picar/v1", "car1")
    shown: list[tuple[str, dict[str, Any]]] = []
    sink = ReadSink(store, publisher.publish, store.audit, save_read_crops=False, save_hit_images=True,
                    hit_cooldown_s=60, push=lambda kind, data: shown.append((kind, data)))
    yield store, outbox, publisher, sink, shown
    outbox.close()
    store.close()


def _topics(outbox: Outbox) -> list[str]:
    return [i.topic.rsplit("/", 1)[-1] for i in outbox.pending(limit=100)]


def test_the_sink_stores_publishes_and_shows_reads_and_hits(parts: Any) -> None:
    store, outbox, _publisher, sink, shown = parts
    read = a_read()
    sink.on_read(read, a_vote(read))
    sink.on_hit(a_hit(read), a_vote(read))
    assert store.counts()["reads"] == 1 and store.counts()["hits"] == 1
    # The hit's two images follow it to HQ as their own events, the bytes the car kept as evidence.
    assert _topics(outbox) == ["read", "hit", "image", "image"]
    hit = store.hit("h1")
    assert hit is not None and hit["crop_path"] and hit["frame_path"]  # the track's images kept as evidence
    images = [json.loads(i.payload) for i in outbox.pending(limit=10)[2:]]
    assert [(i["role"], i["hit_event_id"]) for i in images] == [("crop", "h1"), ("frame", "h1")]
    assert base64.b64decode(images[0]["data"]) == (store.image_dir / hit["crop_path"]).read_bytes()
    assert [k for k, _ in shown] == ["read", "hit"] and sink.reads_per_min() == 1
    # a repeat within the cooldown is stored and sent, but does not sound the alarm again
    sink.on_hit(a_hit(read, "h2"), a_vote(read))
    assert [k for k, _ in shown] == ["read", "hit"]
    assert json.loads(outbox.pending(limit=10)[-3].payload)["repeat_of"] == "h1"
    # covert hits go to HQ only; a recheck hit has no images
    sink.on_hit(a_hit(a_read("r2", "KL901X"), "h3", covert=True), None, recheck=True)
    assert [k for k, _ in shown] == ["read", "hit"] and _topics(outbox)[-1] == "hit"
    assert store.hit("h3") is not None and not store.hit("h3")["crop_path"]


def test_the_officer_decides_with_a_known_reason_and_hq_hears_it(parts: Any) -> None:
    store, outbox, publisher, sink, _ = parts
    read = a_read()
    sink.on_hit(a_hit(read), a_vote(read))
    officer = OfficerActions(store, publisher.publish, store.audit, "car1")
    with pytest.raises(ValueError, match="decision"):
        officer.dispose("h1", "maybe", None, None)
    with pytest.raises(ValueError, match="reject reason"):
        officer.dispose("h1", "reject", "bored", None)
    with pytest.raises(KeyError):
        officer.dispose("nope", "accept", None, None)
    payload = officer.dispose("h1", "reject", REJECT_REASONS[0], "plate is dirty")
    assert payload["decision"] == "reject" and payload["vehicle"] == "car1"
    assert _topics(outbox)[-1] == "disposition"
    assert any(a[2] == "hit reject" for a in store.audit_entries())


def test_hq_commands_apply_a_list_off_the_network_thread_and_then_recheck(tmp_path: Path) -> None:
    watchlist = WatchlistStore(tmp_path / "wl", public_key=None, require_signature=False)
    watchlist.load()
    new_list = threading.Event()
    commands = HqCommands(watchlist, on_new_list=new_list.set)
    commands.on_command("picar/v1/car1/watchlist",
                        snapshot_payload([{"plate": "MD123AB", "list": "stolen_vehicle", "priority": 1}], version=3))
    assert new_list.wait(30) and watchlist.version == 3
    new_list.clear()
    assert not commands.apply_watchlist(b"not an update", "test")  # rejected: the old list stays
    assert not new_list.is_set() and watchlist.version == 3
    commands.on_command("picar/v1/car1/something-else", b"{}")  # logged and ignored
    assert watchlist.version == 3


def test_status_reports_what_is_there_and_what_is_missing(parts: Any) -> None:
    _store, outbox, _publisher, sink, _ = parts
    read = a_read()
    sink.on_read(read, a_vote(read))
    empty = StatusReport("car1", lambda: None).summary()
    assert empty["hq"] == {"connected": False, "backlog": 0} and empty["gps"]["fix"] == "none"
    full = StatusReport("car1", lambda: 7, outbox=outbox, sink=sink).summary()
    assert full["watchlist_version"] == 7 and full["hq"]["backlog"] == 1
    assert [r["plate"] for r in full["recent_reads"]] == ["MD123AB"] and full["reads_per_min"] == 1


def test_a_full_disk_loses_nothing_the_page_showed_and_the_officer_still_decides(tmp_path: Path) -> None:
    """Issue 20's full-disk scenario: the car's data directory on a small filesystem that fills up."""
    with tiny_tmpfs(tmp_path / "data", "4m") as data:  # room for both databases once the filler goes
        store = Store(data, min_free_mb=0)
        outbox = Outbox(data / "outbox.db")
        publisher = EventPublisher(outbox, None, "picar/v1", "car1")
        shown: list[tuple[str, dict[str, Any]]] = []
        sink = ReadSink(store, publisher.publish, store.audit, save_read_crops=False, save_hit_images=False,
                        hit_cooldown_s=60, push=lambda kind, data: shown.append((kind, data)))
        officer = OfficerActions(store, publisher.publish, store.audit, "car1")
        status = StatusReport("car1", lambda: 7, outbox=outbox, sink=sink, store=store)
        assert status.summary()["storage"] == {"full": False, "pending": 0, "lost": 0}
        filler = fill(data / "filler")
        for i in range(120):
            read = a_read(f"r{i}", f"MD{i:03d}AB")
            sink.on_read(read, a_vote(read))
            if i % 10 == 0:
                sink.on_hit(a_hit(read, f"h{i}"), a_vote(read))
        shown_hits = [d["event_id"] for k, d in shown if k == "hit"]
        assert len(shown_hits) == 12
        storage = status.summary()["storage"]
        assert storage["full"] and storage["pending"] > 120 and storage["lost"] == 0
        # The officer decides a hit the page showed while nothing can be written: no "no hit" error.
        decided = officer.dispose("h30", "accept", None, "driver detained")
        assert decided["hit_event_id"] == "h30"
        officer.dispose("h50", "reject", REJECT_REASONS[0], None)
        filler.unlink()  # space returns; housekeeping retries
        store.retry_pending()
        publisher.retry_waiting()
        assert status.summary()["storage"] == {"full": False, "pending": 0, "lost": 0}
        assert publisher.waiting == 0
        store.close()
        outbox.close()
        again = Store(data, min_free_mb=0)
        try:
            assert again.counts() == {"reads": 120, "hits": 12}
            assert all(again.hit(h) is not None for h in shown_hits)
            assert again.hit("h30")["disposition"] == "accept"  # type: ignore[index]
            assert again.hit("h50")["disposition_reason"] == REJECT_REASONS[0]  # type: ignore[index]
            assert [a[2] for a in again.audit_entries() if a[1] == "officer"] == ["hit reject", "hit accept"]
        finally:
            again.close()


def test_housekeeping_writes_what_waited_and_tells_the_page_when_storage_fills_and_frees(tmp_path: Path) -> None:
    from picar.housekeeping import Housekeeping

    class Page:
        def __init__(self) -> None:
            self.pushed: list[dict[str, Any]] = []

        def push(self, kind: str, data: dict[str, Any]) -> None:
            assert kind == "status"
            self.pushed.append(data["storage"])

    with tiny_tmpfs(tmp_path / "data", "1m") as data:
        store = Store(data, min_free_mb=0)
        outbox = Outbox(tmp_path / "outbox.db")
        page = Page()
        status = StatusReport("car1", lambda: 7, store=store)
        chores = Housekeeping(lambda: None, store, EventPublisher(outbox, None, "picar/v1", "car1"),  # type: ignore
                              status.summary, page=page)  # type: ignore
        chores.retry_writes()
        assert page.pushed == []  # nothing changed
        filler = fill(data / "filler")
        for i in range(20):
            store.add_read(a_read(f"r{i}"))
        chores.retry_writes()
        chores.retry_writes()
        assert [p["full"] for p in page.pushed] == [True] and page.pushed[0]["pending"] == 20
        filler.unlink()
        chores.retry_writes()
        assert page.pushed[-1] == {"full": False, "pending": 0, "lost": 0} and store.counts()["reads"] == 20
        store.close()
        outbox.close()


def test_a_signal_arriving_while_the_signal_queue_is_busy_does_not_deadlock(tmp_path: Path) -> None:
    """The handler runs between two bytecodes of whatever the main thread does, even inside the queue's own
    code; it must not take a lock that code may hold (queue.Queue's mutex) or the daemon hangs."""
    import subprocess
    import sys

    script = f'''
import os, signal, threading
from picar.app import Daemon, install_signal_handlers
from picar.config import parse_config
cfg = parse_config({{"vehicle": {{"id": "car1"}}, "cameras": [{{"name": "f", "source": "0"}}],
                    "mqtt": {{"enabled": False, "tls": False}},
                    "storage": {{"data_dir": {str(tmp_path)!r}}}}}, {str(tmp_path)!r})
d = Daemon(cfg)
install_signal_handlers(d)
lock = getattr(d.signals, "mutex", None) or threading.Lock()  # what the queue's own code would hold
with lock:
    os.kill(os.getpid(), signal.SIGHUP)  # the handler runs here, while the lock is held
    for _ in range(1000):
        pass
print("got", d.signals.get(timeout=5))
'''
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and f"got {int(signal.SIGHUP)}" in proc.stdout, proc.stderr[-2000:]


def test_a_camera_without_frames_keeps_the_watchdog_fed_a_stuck_loop_does_not(tmp_path: Path) -> None:
    """A camera gone for minutes is the camera worker's to reconnect; only a loop that stops going round
    (a hung model) makes systemd restart the daemon."""
    from picar.app import HEALTHY_LOOP_AGE_S, Daemon
    from picar.config import parse_config
    from picar.pipeline.loop import Pipeline
    from picar.pipeline.tracker import PlateTracker, TrackerSettings

    hang = threading.Event()

    class NoFrames:
        name, finished = "front", False

        def get(self, timeout: float = 0.0) -> None:
            while hang.is_set():  # the loop is stuck here, as in a hung model
                time.sleep(0.01)
            time.sleep(timeout)

    cfg = parse_config({"vehicle": {"id": "car1"}, "cameras": [{"name": "front", "source": "0"}],
                        "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(tmp_path)}}, tmp_path)
    daemon = Daemon(cfg)
    pipeline = daemon.pipeline = Pipeline("car1", None, None, PlateTracker(TrackerSettings()), None,  # type: ignore[arg-type]
                                          lambda r: [], position_at=lambda t: None)
    stop = threading.Event()
    daemon.cameras = [NoFrames()]  # type: ignore[list-item]
    daemon._spawn("loop", pipeline.run, daemon.cameras, stop)
    try:
        assert wait_until(lambda: pipeline.counters.last_pass_monotonic > 0, 30)
        # no frame for ten times the limit: still healthy while the loop goes round
        pipeline.counters.last_frame_monotonic = time.monotonic() - 10 * HEALTHY_LOOP_AGE_S
        first = pipeline.counters.last_pass_monotonic
        assert wait_until(lambda: pipeline.counters.last_pass_monotonic > first, 30)
        assert daemon.healthy()
        # a loop that stopped going round (its thread alive, stuck inside a pass) is not
        hang.set()
        time.sleep(0.3)  # let the loop enter the stuck pass; its heartbeat is then aged below
        pipeline.counters.last_pass_monotonic = time.monotonic() - 2 * HEALTHY_LOOP_AGE_S
        assert any(t.name == "loop" and t.is_alive() for t in daemon._threads)
        assert not daemon.healthy()
    finally:
        hang.clear()
        stop.set()
