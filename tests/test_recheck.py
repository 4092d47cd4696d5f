"""A new watchlist is checked against the reads of the last hours, and hits are raised for them."""

import json
import time
from pathlib import Path

from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher
from picar.pipeline.sink import ReadSink
from picar.pipeline.store import Store
from picar.types import PlateRead
from picar.watchlist.recheck import Recheck
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import snapshot_payload


def read(event_id: str, text: str, age_h: float, candidates: tuple[tuple[str, float], ...] = ()) -> PlateRead:
    t = time.time() - age_h * 3600
    return PlateRead(event_id, "car1", "front", text, 0.9, ((text, 0.9), *candidates), t, t, t, 3, (0, 0, 1, 1),
                     None)


def test_new_list_raises_hits_on_recent_reads_only_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "d", min_free_mb=0)
    outbox = Outbox(tmp_path / "d" / "outbox.db")
    watchlist = WatchlistStore(tmp_path / "wl", public_key=None, require_signature=False)
    watchlist.load()
    sink = ReadSink(store, EventPublisher(outbox, None, "picar/v1", "car1").publish, store.audit,
                    save_read_crops=False, save_hit_images=True, hit_cooldown_s=60)
    recheck = Recheck(store, lambda r: list(watchlist.current.match(r.candidates)), sink.on_hit, lambda t: None,
                      "car1", hours=24)
    store.add_read(read("r-recent", "MD123AB", 2))
    store.add_read(read("r-second-candidate", "KLX901", 5, (("KLX9O1", 0.4),)))
    store.add_read(read("r-old", "MD123AB", 30))  # older than recheck_hours
    store.add_read(read("r-innocent", "ZZZ999", 1))
    update = snapshot_payload([{"plate": "MD123AB", "list": "stolen_vehicle", "priority": 1},
                               {"plate": "KLX9O1", "list": "bolo", "priority": 2}], version=7)
    assert watchlist.apply_update(update, origin="test").accepted
    assert recheck.run() == 2
    assert recheck.run() == 0  # the same read and entry never hit twice
    hits = [json.loads(i.payload) for i in outbox.pending(limit=50) if i.topic.endswith("/hit")]
    assert sorted((h["read_event_id"], h["plate"], h["recheck"]) for h in hits) == [
        ("r-recent", "MD123AB", True), ("r-second-candidate", "KLX9O1", True)]
    assert store.counts()["hits"] == 2
