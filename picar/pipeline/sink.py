"""Where the loop's reads and hits go: the car's store, HQ (through the publisher) and the in-car page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from picar.isotime import event_iso
from picar.pipeline.events import MAX_IMAGE_BYTES, hit_payload, image_payload, read_payload
from picar.pipeline.store import Store
from picar.pipeline.tracker import VotedRead
from picar.types import Hit, PlateRead

log = logging.getLogger("picar")

Publish = Callable[[str, dict[str, Any]], str]
Push = Callable[[str, dict[str, Any]], None]
Audit = Callable[[str, str, dict[str, Any]], None]

RECENT_READS = 50
RECENT_HITS = 20


@dataclass
class HitGroups:
    """Repeated hits on the same plate and list within the cooldown are one group (one alarm)."""

    cooldown_s: float
    _first: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def group(self, hit: Hit) -> str | None:
        key = (hit.entry.plate, hit.entry.list)
        prev = self._first.get(key)
        if prev is not None and hit.read.captured_at - prev[1] < self.cooldown_s:
            return prev[0]
        self._first[key] = (hit.event_id, hit.read.captured_at)
        return None


@dataclass
class ReadSink:
    """The loop's sink (pipeline.loop.Sink): stores, publishes and shows each read and hit.

    `push` shows an event on the in-car page; it may be set once the page is up.
    """

    store: Store
    publish: Publish
    audit: Audit
    _: KW_ONLY
    save_read_crops: bool
    save_hit_images: bool
    hit_cooldown_s: float
    push: Push | None = None
    recent_reads: list[dict[str, Any]] = field(default_factory=list, init=False)
    recent_hits: list[dict[str, Any]] = field(default_factory=list, init=False)
    groups: HitGroups = field(init=False)
    _read_times: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.groups = HitGroups(self.hit_cooldown_s)

    def reads_per_min(self) -> int:
        now = time.time()
        return sum(1 for t in self._read_times if now - t < 60)

    def on_read(self, read: PlateRead, voted: VotedRead) -> None:
        crop = self.store.save_image(voted.crop, f"{read.event_id}-crop") if self.save_read_crops else None
        self.store.add_read(read, crop)
        self.publish("read", read_payload(read, crop))
        now = time.time()
        self._read_times = [t for t in self._read_times if now - t < 60] + [now]
        summary = {"event_id": read.event_id, "plate": read.text, "confidence": read.confidence,
                   "camera": read.camera, "time": event_iso(read.captured_at),
                   "lat": read.fix.lat if read.fix else None, "lon": read.fix.lon if read.fix else None}
        self.recent_reads = ([summary] + self.recent_reads)[:RECENT_READS]
        if self.push is not None:
            self.push("read", summary)

    def _send_images(self, hit: Hit, saved: dict[str, str | None]) -> None:
        """The hit's saved images to HQ, each its own event behind the hit (the evidence HQ keeps)."""
        for role, rel in saved.items():
            if rel is None:
                continue
            try:
                jpeg = (self.store.image_dir / rel).read_bytes()
            except OSError as exc:
                log.error("hit %s: %s image %s not sent to HQ: %s", hit.event_id, role, rel, exc)
                continue
            if len(jpeg) > MAX_IMAGE_BYTES:
                log.warning("hit %s: %s image is %d bytes, more than %d: kept on the car, not sent to HQ",
                            hit.event_id, role, len(jpeg), MAX_IMAGE_BYTES)
                continue
            self.publish("image", image_payload(hit, role, jpeg))

    def on_hit(self, hit: Hit, voted: VotedRead | None, recheck: bool = False) -> None:
        """A hit of the loop (with the track's images) or of a recheck of past reads (`voted` None)."""
        crop = frame = None
        if self.save_hit_images and voted is not None:
            crop = self.store.save_image(voted.crop, f"{hit.event_id}-crop", quality=92)
            frame = self.store.save_image(voted.frame, f"{hit.event_id}-frame", quality=80)
        repeat_of = self.groups.group(hit)
        self.store.add_hit(hit, crop, frame)
        payload = hit_payload(hit, crop, frame, repeat_of=repeat_of, recheck=recheck)
        self.publish("hit", payload)
        self._send_images(hit, {"crop": crop, "frame": frame})
        self.audit("daemon", "hit", {"event_id": hit.event_id, "plate": hit.entry.plate, "list": hit.entry.list,
                                     "match": hit.match.describe(), "covert": hit.entry.covert})
        if hit.entry.covert or repeat_of is not None:
            return  # covert hits go to HQ only; repeats do not sound the alarm again
        log.warning("HIT %s (%s, priority %d) read %s: %s", hit.entry.plate, hit.entry.list, hit.entry.priority,
                    hit.match.read_text, hit.match.describe())
        self.recent_hits = ([payload] + self.recent_hits)[:RECENT_HITS]
        if self.push is not None:
            self.push("hit", payload)
