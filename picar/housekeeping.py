"""The daemon's slow duties, on their own thread: retry the records the database and the events the outbox
refused (disk full), status and position to HQ, the retention purge, the K9 track and the page's status line."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from picar.config import Config
    from picar.link.mqtt import HqLink
    from picar.link.publisher import EventPublisher
    from picar.pipeline.store import Store
    from picar.sources.gps import GpsSource
    from picar.station.k9 import K9Log
    from picar.station.server import StationServer

log = logging.getLogger("picar")

TICK_S = 0.5
STATUS_INTERVAL_S = 60.0


@dataclass
class Housekeeping:
    config: Callable[[], Config]  # the config in force (SIGHUP may replace it)
    store: Store
    publisher: EventPublisher
    status: Callable[[], dict[str, Any]]
    hq: HqLink | None = None
    gps: GpsSource | None = None
    k9: K9Log | None = None
    page: StationServer | None = None
    _storage_full: bool = field(default=False, init=False)

    def run(self, stop: threading.Event) -> None:
        next_purge = 0.0
        next_position = 0.0
        next_status = time.monotonic() + STATUS_INTERVAL_S
        while not stop.wait(TICK_S):
            now = time.monotonic()
            cfg = self.config()
            self.retry_writes()
            if now >= next_status and self.hq is not None:
                next_status = now + STATUS_INTERVAL_S
                self.hq.publish_status()
            if now >= next_purge:
                next_purge = now + cfg.retention.purge_interval_s
                self.purge()
            if now >= next_position:
                next_position = now + cfg.mqtt.position_interval_s
                self.report_position()

    def retry_writes(self) -> None:
        """Write what waits in memory for disk space; the page hears at once when storage fills or frees."""
        was_full = self._storage_full
        try:
            self.store.retry_pending()
        except Exception:
            log.exception("store: retrying the records kept in memory failed")
        self.publisher.retry_waiting()
        self._storage_full = self.store.storage_full
        if self._storage_full != was_full and self.page is not None:
            self.page.push("status", self.status())

    def purge(self) -> None:
        r = self.config().retention
        try:
            res = self.store.purge(r.reads_days, r.hits_days)
            if res.reads or res.hits:
                log.info("retention: purged %d reads, %d hits, %d images", res.reads, res.hits, res.files)
        except Exception:
            log.exception("retention purge failed")
        try:  # the outbox keeps acknowledged events (plates, positions) no longer than the reads themselves
            gone = self.publisher.outbox.purge_acked(r.reads_days * 86400)
            if gone:
                self.store.audit("retention", "purge outbox", {"events": gone, "reads_days": r.reads_days})
        except Exception:
            log.exception("outbox retention purge failed")
        if self.k9 is None:
            return
        try:
            gone = self.k9.purge(r.k9_days)
            if gone:
                self.store.audit("retention", "purge k9", {"deployments": gone, "k9_days": r.k9_days})
        except Exception:
            log.exception("K9 retention purge failed")

    def report_position(self) -> None:
        fix = self.gps.latest() if self.gps else None
        if fix is not None and self.hq is not None:
            self.hq.publish_position(fix.to_json())
        if fix is not None and self.k9 is not None:
            self.k9.record_position()
        if self.page is not None:
            self.page.push("status", self.status())
