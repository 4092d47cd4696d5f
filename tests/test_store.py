import socket
from pathlib import Path

import numpy as np

from picar.pipeline.store import Store
from picar.systemd import Notifier
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry


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
