import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from picar.pipeline.store import Store
from picar.systemd import Notifier
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from tests.tinyfs import fill, tiny_tmpfs


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_read(event_id: str, t: float, text: str = "AB123CD") -> PlateRead:
    from datetime import UTC, datetime

    fix = Fix(datetime.fromtimestamp(t, UTC), 47.0, 28.8, "3d", 40.0, 90.0, 9, 0.9)
    return PlateRead(event_id, "car1", "front", text, 0.9, ((text, 0.9),), t, t, t, 3, (1, 2, 3, 4), fix)


def test_retention_purges_innocent_reads_first_and_audits(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    store = Store(tmp_path, min_free_mb=0, clock=clock)
    day = 86400
    store.add_read(make_read("old-innocent", clock.t - 10 * day))
    store.add_read(make_read("new-innocent", clock.t - 1 * day))
    hit_read = make_read("old-hit", clock.t - 10 * day)
    store.add_read(hit_read)
    crop = store.save_image(np.zeros((20, 60, 3), np.uint8), "h1-crop")
    hit = Hit("h1", hit_read, WatchEntry("AB123CD"), Match("exact", "AB123CD"), raised_at=clock.t - 10 * day)
    store.add_hit(hit, crop, None)
    res = store.purge(reads_days=7, hits_days=365)
    assert (res.reads, res.hits) == (1, 0)
    assert store.counts() == {"reads": 2, "hits": 1}
    assert any(a[2] == "purge" for a in store.audit_entries())
    clock.t += 400 * day
    res = store.purge(reads_days=7, hits_days=365)
    assert store.counts() == {"reads": 0, "hits": 0}
    assert res.files == 1 and crop is not None and not (store.image_dir / crop).exists()


def test_disposition_is_stored(tmp_path: Path) -> None:
    store = Store(tmp_path, min_free_mb=0)
    read = make_read("r1", 1000.0)
    store.add_read(read)
    store.add_hit(Hit("h1", read, WatchEntry("AB123CD"), Match("exact", "AB123CD"), 1000.0), None, None)
    assert store.set_disposition("h1", "reject", "misread", "plate was AB128CD")
    assert store.hit("h1")["disposition_reason"] == "misread"
    assert not store.set_disposition("nope", "accept", None, None)


def test_images_skipped_when_disk_is_low(tmp_path: Path) -> None:
    store = Store(tmp_path, min_free_mb=10**12)
    assert store.save_image(np.zeros((5, 5, 3), np.uint8), "x") is None
    assert store.images_skipped == 1


def test_sd_notify_over_a_real_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        srv.settimeout(2)
        n = Notifier(path)
        assert n.ready("up")
        assert srv.recv(100) == b"READY=1\nSTATUS=up"
        assert n.watchdog()
        assert srv.recv(100) == b"WATCHDOG=1"
    assert not Notifier("").ready()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The car's data directory on a real 1 MiB filesystem (the full-disk scenario of issue 20)."""
    with tiny_tmpfs(tmp_path / "data", "1m") as mnt:
        yield mnt


def a_hit(read: PlateRead, event_id: str) -> Hit:
    return Hit(event_id, read, WatchEntry(read.text, "stolen_vehicle", 1), Match("exact", read.text), read.captured_at)


def test_a_full_disk_keeps_reads_hits_and_decisions_in_memory_until_space_returns(small_disk: Path) -> None:
    store = Store(small_disk, min_free_mb=0)
    store.add_read(make_read("before", 1000.0))
    filler = fill(small_disk / "filler")
    reads = [make_read(f"r{i}", 1001.0 + i, text=f"AB{i:03d}CD") for i in range(200)]
    hits = [a_hit(reads[i], f"h{i}") for i in range(0, 200, 20)]
    for i, read in enumerate(reads):
        store.add_read(read)
        if i % 20 == 0:
            store.add_hit(hits[i // 20], None, None)
    store.audit("officer", "login", {"badge": 7})
    # While the disk is full, a hit shown to the officer is still a hit, and the officer can decide it.
    assert all(store.hit(h.event_id) is not None for h in hits)
    assert store.set_disposition("h20", "reject", "misread", "plate was AB028CD")
    assert store.hit("h20")["disposition"] == "reject"  # type: ignore[index]
    assert not store.set_disposition("no-such-hit", "accept", None, None)
    assert store.has_hit("r40", "AB040CD", "stolen_vehicle")
    assert {r["event_id"] for r in store.recent_reads(0)} == {"before", *(r.event_id for r in reads)}
    assert store.storage_full and store.pending > 200
    assert store.retry_pending() == 0 and store.storage_full  # still full: nothing written, nothing dropped
    filler.unlink()
    assert store.retry_pending() > 200
    assert not store.storage_full and store.pending == 0 and store.pending_counts()["lost"] == 0
    store.close()
    again = Store(small_disk, min_free_mb=0)  # what the disk holds now, nothing from memory
    assert again.counts() == {"reads": 201, "hits": 10}
    decided = again.hit("h20")
    assert decided is not None and decided["disposition_reason"] == "misread"
    assert decided["disposition_note"] == "plate was AB028CD"
    assert [a[2] for a in again.audit_entries() if a[1] == "officer"] == ["login"]
    again.close()


def test_a_decision_made_while_the_disk_is_full_is_stored_once_space_returns(small_disk: Path) -> None:
    store = Store(small_disk, min_free_mb=0)
    read = make_read("r1", 1000.0)
    store.add_read(read)
    store.add_hit(a_hit(read, "h1"), None, None)
    filler = fill(small_disk / "filler")
    for i in range(50):  # the disk is full for sure: the write-ahead log has no room left to grow
        store.add_read(make_read(f"later{i}", 1001.0 + i))
    assert store.set_disposition("h1", "accept", None, "stopped and checked")
    assert store.hit("h1")["disposition"] == "accept"  # type: ignore[index]
    filler.unlink()
    store.retry_pending()
    store.close()
    again = Store(small_disk, min_free_mb=0)
    stored = again.hit("h1")
    assert stored is not None and stored["disposition"] == "accept"
    assert stored["disposition_note"] == "stopped and checked"
    assert again.counts()["reads"] == 51
    again.close()


def test_beyond_its_bound_the_memory_queue_counts_and_logs_critical_once(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(small_disk, min_free_mb=0, max_pending=5)
    filler = fill(small_disk / "filler")
    with caplog.at_level(logging.WARNING, logger="picar.store"):
        for i in range(12):
            store.add_read(make_read(f"r{i}", 1000.0 + i))
    assert store.pending_counts() == {"reads": 5, "hits": 0, "dispositions": 0, "audit": 0, "total": 5, "lost": 7}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # one error, not one per read
    assert len([r for r in caplog.records if r.levelno == logging.CRITICAL]) == 1
    filler.unlink()
    store.retry_pending()
    assert store.counts()["reads"] == 5
    store.close()


def test_the_audit_file_reports_a_full_disk_once_not_once_per_line(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from picar.app import setup_logging

    audit = logging.getLogger("picar.store")
    before, level = list(audit.handlers), audit.level
    setup_logging("INFO", small_disk / "audit.log")
    (handler,) = [h for h in audit.handlers if h not in before]
    audit.setLevel(logging.INFO)  # pytest's own root handler keeps setup_logging from setting the root's level
    try:
        audit.info("audit: daemon start {}")
        filler = fill(small_disk / "filler")
        for i in range(300):
            audit.info("audit: daemon hit {\"n\": %d}", i)
        err = capsys.readouterr().err
        assert err.count("Traceback") == 0 and err.count("audit.log") == 1, err[:2000]
        filler.unlink()
        audit.info("audit: officer hit accept {}")
        err = capsys.readouterr().err
        assert "written again" in err and err.count("\n") == 1
        handler.flush()
        assert "officer hit accept" in (small_disk / "audit.log").read_text()
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)
        handler.close()


def test_a_damaged_database_is_kept_for_inspection_and_a_new_one_started(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 32
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "picar.db").write_bytes(junk)
    store = Store(tmp_path, min_free_mb=0)
    try:
        assert store.counts()["reads"] == 0
    finally:
        store.close()
    (kept,) = tmp_path.glob("picar.db.damaged-*")
    assert kept.read_bytes() == junk
