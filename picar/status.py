"""The car's status as the in-car page and HQ see it: cameras, GPS, link, backlog, storage, watchlist, counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from picar import __version__

if TYPE_CHECKING:
    from picar.link.mqtt import HqLink
    from picar.link.outbox import Outbox
    from picar.pipeline.loop import Pipeline
    from picar.pipeline.sink import ReadSink
    from picar.pipeline.store import Store
    from picar.sources.camera import Camera
    from picar.sources.gps import GpsSource

PAGE_RECENT_HITS = 5
PAGE_RECENT_READS = 10


@dataclass
class StatusReport:
    """`summary()` reads the parts as they are at the moment; any part may still be missing."""

    vehicle_id: str
    watchlist_version: Callable[[], int | None]
    watchlist_problem: Callable[[], str | None] = lambda: None
    cameras: Sequence[Camera] = ()
    gps: GpsSource | None = None
    hq: HqLink | None = None
    outbox: Outbox | None = None
    pipeline: Pipeline | None = None
    sink: ReadSink | None = None
    store: Store | None = None

    def summary(self) -> dict[str, Any]:
        c = self.pipeline.counters if self.pipeline else None
        fix = self.gps.latest() if self.gps else None
        return {
            "vehicle": self.vehicle_id,
            "version": __version__,
            "watchlist_version": self.watchlist_version(),
            "watchlist_problem": self.watchlist_problem(),
            "cameras": [cam.status() for cam in self.cameras],
            "gps": {"fix": fix.fix if fix else "none", "lat": fix.lat if fix else None,
                    "lon": fix.lon if fix else None,
                    "age_s": round(time.monotonic() - fix.received_monotonic, 1) if fix else None},
            "hq": {"connected": bool(self.hq and self.hq.connected),
                   "backlog": self.outbox.backlog() if self.outbox else 0},
            "storage": self.storage(),
            "reads": c.reads if c else 0,
            "hits": c.hits if c else 0,
            "reads_per_min": self.sink.reads_per_min() if self.sink else 0,
            "frames": c.frames if c else 0,
            "recent_hits": self.sink.recent_hits[:PAGE_RECENT_HITS] if self.sink else [],
            "recent_reads": self.sink.recent_reads[:PAGE_RECENT_READS] if self.sink else [],
        }

    def storage(self) -> dict[str, Any]:
        """`full` while the database refuses writes; `pending` records wait in memory, `lost` went over the bound."""
        if self.store is None:
            return {"full": False, "pending": 0, "lost": 0}
        counts = self.store.pending_counts()
        return {"full": counts["total"] > 0, "pending": counts["total"], "lost": counts["lost"]}
