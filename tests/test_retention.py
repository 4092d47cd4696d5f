"""Retention everywhere a read is kept: after `reads_days` nothing of an innocent vehicle's read is left in
the car's database, its images or its outbox; a hit's read crop goes with the hit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from picar.config import parse_config
from picar.housekeeping import Housekeeping
from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher
from picar.pipeline.sink import ReadSink
from picar.pipeline.store import Store
from picar.pipeline.tracker import VotedRead
from picar.types import Hit, Match, PlateRead, WatchEntry

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def a_read(event_id: str, text: str, t: float) -> PlateRead:
    return PlateRead(event_id=event_id, vehicle_id="car1", camera="front", text=text, confidence=0.9,
                     candidates=((text, 0.9),), captured_at=t, first_seen=t, last_seen=t, frames=3,
                     box=(0, 0, 10, 5), fix=None)


def a_vote(read: PlateRead) -> VotedRead:
    img = np.random.default_rng(1).integers(0, 255, (24, 48, 3), dtype=np.uint8)
    return VotedRead(camera=read.camera, text=read.text, confidence=read.confidence, candidates=read.candidates,
                     chars=(), captured_at=read.captured_at, capture_monotonic=0.0, first_seen=read.first_seen,
                     last_seen=read.last_seen, frames=3, box=read.box, crop=img, frame=img)


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_nothing_of_a_purged_read_is_left_in_the_database_images_or_outbox(tmp_path: Path) -> None:
    clock = Clock()
    data = tmp_path / "data"
    store = Store(data, min_free_mb=0, clock=clock)
    outbox = Outbox(data / "outbox.db", clock=clock)
    publisher = EventPublisher(outbox, None, "picar/v1", "car1")
    sink = ReadSink(store, publisher.publish, store.audit, save_read_crops=True, save_hit_images=True,
                    hit_cooldown_s=60)
    cfg = parse_config({"vehicle": {"id": "car1"}, "cameras": [{"name": "f", "source": "0"}],
                        "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(data)},
                        "retention": {"reads_days": 1, "hits_days": 3}}, tmp_path)
    housekeeping = Housekeeping(lambda: cfg, store, publisher, dict)
    try:
        innocent = a_read("r-innocent", "ZZQ4711", clock.t)
        sink.on_read(innocent, a_vote(innocent))
        wanted = a_read("r-wanted", "MDK8842", clock.t)
        sink.on_read(wanted, a_vote(wanted))
        sink.on_hit(Hit("h-1", wanted, WatchEntry("MDK8842", "stolen_vehicle", 1), Match("exact", "MDK8842"),
                        raised_at=clock.t), a_vote(wanted))
        outbox.mark_acked_many([i.event_id for i in outbox.pending(limit=10)])  # HQ has them all
        images = sorted(p.name for p in store.image_dir.rglob("*.jpg"))
        assert len(images) == 4  # two read crops, the hit's crop and frame
        assert files_holding(data, b"ZZQ4711")  # the plate is on disk before retention runs

        clock.t += 2 * DAY  # past reads_days: the innocent read goes everywhere
        housekeeping.purge()
        assert files_holding(data, b"ZZQ4711") == []
        assert not list(store.image_dir.rglob("r-innocent*"))
        assert store.counts()["reads"] == 1 and store.counts()["hits"] == 1

        clock.t += 2 * DAY  # past hits_days: the hit, its images and its read's crop go too
        housekeeping.purge()
        assert list(store.image_dir.rglob("*.jpg")) == []
        # only the audit trail in picar.db still names it (who saw what is kept); no image or outbox event does
        assert [f for f in files_holding(data, b"MDK8842") if not Path(f).name.startswith("picar.db")] == []
        assert [e[2] for e in store.audit_entries() if "MDK8842" in e[3]] == ["hit"]
        assert store.counts()["reads"] == 0 and store.counts()["hits"] == 0
    finally:
        outbox.close()
        store.close()
