"""A new watchlist arrived: the reads of the last hours are matched again, and hits raised for them."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from picar.pipeline.loop import Matcher, PositionAt
from picar.pipeline.store import Store
from picar.types import Hit, PlateRead

log = logging.getLogger("picar")

RaiseHit = Callable[..., None]  # ReadSink.on_hit(hit, voted=None, recheck=True)


class Recheck:
    """`run()` raises each hit once: a read and an entry that already hit are skipped."""

    def __init__(self, store: Store, match: Matcher, raise_hit: RaiseHit, position_at: PositionAt,
                 vehicle_id: str, hours: float) -> None:
        self.store = store
        self.match = match
        self.raise_hit = raise_hit
        self.position_at = position_at
        self.vehicle_id = vehicle_id
        self.hours = hours

    def stored_read(self, row: dict[str, Any]) -> PlateRead:
        """A read as the store kept it: text, candidates and time; position from the GPS history."""
        t = row["captured_at"]
        return PlateRead(event_id=row["event_id"], vehicle_id=self.vehicle_id, camera=row["camera"],
                         text=row["text"], confidence=row["confidence"], candidates=tuple(row["candidates"]),
                         captured_at=t, first_seen=t, last_seen=t, frames=0, box=(0, 0, 0, 0),
                         fix=self.position_at(t))

    def run(self) -> int:
        """Match the reads of the last `hours` against the current list; returns how many hits were raised."""
        raised = 0
        for row in self.store.recent_reads(time.time() - self.hours * 3600):
            read = self.stored_read(row)
            for entry, match in self.match(read):
                if self.store.has_hit(read.event_id, entry.plate, entry.list):
                    continue
                self.raise_hit(Hit(str(uuid.uuid4()), read, entry, match, raised_at=time.time()), None,
                               recheck=True)
                raised += 1
        if raised:
            log.warning("watchlist recheck: %d hit(s) among past reads", raised)
        return raised
