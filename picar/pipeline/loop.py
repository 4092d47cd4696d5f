"""The tight loop: newest frame per camera -> detect -> OCR (batched) -> track and vote -> match -> sinks."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from picar.pipeline.metrics import StageTimes
from picar.pipeline.tracker import PlateTracker, VotedRead
from picar.types import Detection, Fix, Frame, Hit, Match, OcrResult, PlateObservation, PlateRead, WatchEntry

log = logging.getLogger("picar.pipeline")  # name kept from before the package move: log lines carry it


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


class Reader(Protocol):
    def read(self, crops: Sequence[np.ndarray], region: str | Sequence[str] | None = None) -> list[OcrResult]: ...


class FrameSourceLike(Protocol):
    name: str

    def get(self, timeout: float) -> Frame | None: ...


class Sink(Protocol):
    """Where reads and hits go: the store, HQ, the in-car page. Must not raise."""

    def on_read(self, read: PlateRead, voted: VotedRead) -> None: ...

    def on_hit(self, hit: Hit, voted: VotedRead) -> None: ...


# What an unread box (`PlateTracker.settled`) carries into the tracker, which replaces it with its track's read.
_UNREAD = OcrResult("", 0.0, (), ())

DEFAULT_REGION = ("auto",)  # the plate grammars a camera reads with when nothing names its region
Matcher = Callable[[PlateRead], list[tuple[WatchEntry, Match]]]
PositionAt = Callable[[float], Fix | None]


def crop_plate(image: np.ndarray, det: Detection, margin_x: float = 0.06, margin_y: float = 0.12) -> np.ndarray:
    """The plate with a small margin, clipped to the frame (the OCR was trained on loose crops)."""
    h, w = image.shape[:2]
    mx, my = int(det.w * margin_x), int(det.h * margin_y)
    x0, y0 = max(0, det.x - mx), max(0, det.y - my)
    x1, y1 = min(w, det.x + det.w + mx), min(h, det.y + det.h + my)
    return image[y0:y1, x0:x1]


@dataclass
class LoopCounters:
    frames: int = 0
    frames_with_plates: int = 0
    detections: int = 0
    reads: int = 0
    hits: int = 0
    low_confidence: int = 0
    settled: int = 0  # boxes not read because their plate's pass was already reported (`PlateTracker.settled`)
    errors: int = 0
    last_frame_monotonic: float = 0.0
    last_pass_monotonic: float = 0.0  # the loop's heartbeat: every pass over the cameras, frames or not


class Pipeline:
    """Runs on one worker thread that owns the tracker; cameras feed it newest frames."""

    def __init__(
        self,
        vehicle_id: str,
        detector: Detector,
        reader: Reader,
        tracker: PlateTracker,
        sink: Sink,
        matcher: Matcher,
        position_at: PositionAt,
        region_of: Callable[[str], Sequence[str]] = lambda camera: DEFAULT_REGION,
        min_read_confidence: float = 0.0,
        times: StageTimes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.detector = detector
        self.reader = reader
        self.tracker = tracker
        self.sink = sink
        self.matcher = matcher
        self.position_at = position_at
        self.region_of = region_of
        self.min_read_confidence = min_read_confidence
        self.times = times or StageTimes()
        self.clock = clock
        self.counters = LoopCounters()
        if tracker.urgent is None:
            tracker.urgent = self._any_candidate_listed
        self._lock = threading.Lock()  # the tracker and matcher are swapped on reload

    # --- one frame ----------------------------------------------------------------------------

    def process(self, frame: Frame) -> list[PlateRead]:
        """Detect, read and track the plates of one frame; emit the reads that became ready."""
        c = self.counters
        c.frames += 1
        c.last_frame_monotonic = time.monotonic()
        t0 = time.perf_counter()
        dets = self.detector.detect(frame.image)
        total_ms = (time.perf_counter() - t0) * 1000.0
        pre_ms = float(getattr(self.detector, "last_preprocess_ms", 0.0))
        self.times.add("preprocess", pre_ms)
        self.times.add("detect", total_ms - pre_ms)
        crops: list[np.ndarray | None] = []
        results: list[OcrResult] = []
        follows: list[int | None] = []
        if dets:
            c.frames_with_plates += 1
            c.detections += len(dets)
            with self.times.time("ocr"):
                with self._lock:
                    # a plate whose pass is already reported is not read again: its box keeps its track alive
                    follows = self.tracker.settled(frame.camera, dets, frame.captured_at)
                todo = [k for k, f in enumerate(follows) if f is None]
                c.settled += len(dets) - len(todo)
                crops = [crop_plate(frame.image, d) if f is None else None for d, f in zip(dets, follows, strict=True)]
                results = [_UNREAD] * len(dets)
                if todo:
                    # each read decoded with the camera's plate grammars (picar.vision.ctc_grammar.search)
                    read = self.reader.read([crop for crop in crops if crop is not None],
                                            region=self.region_of(frame.camera))
                    for k, r in zip(todo, read, strict=True):
                        results[k] = r
        with self.times.time("track_match"):
            observations = [
                PlateObservation(frame.camera, frame.index, frame.captured_at, frame.monotonic, d, r)
                for d, r in zip(dets, results, strict=True)
            ]
            with self._lock:
                voted = self.tracker.update(frame.camera, observations, crops, frame.image, now=frame.captured_at,
                                            follows=follows or None)
                voted += self.tracker.flush(frame.captured_at)
            return self._emit_all(voted)

    def flush(self, now: float | None = None, final: bool = False) -> list[PlateRead]:
        """Emit reads of tracks that ended (or all of them when the clip or the shift ends)."""
        with self._lock:
            voted = self.tracker.close() if final else self.tracker.flush(now if now is not None else self.clock())
        return self._emit_all(voted)

    def _emit_all(self, voted: list[VotedRead]) -> list[PlateRead]:
        out = []
        for v in voted:
            read = self._emit(v)
            if read is not None:
                out.append(read)
        return out

    def _to_read(self, voted: VotedRead, with_position: bool = True) -> PlateRead:
        return PlateRead(
            event_id=str(uuid.uuid4()),
            vehicle_id=self.vehicle_id,
            camera=voted.camera,
            text=voted.text,
            confidence=round(voted.confidence, 4),
            candidates=voted.candidates,
            captured_at=voted.captured_at,
            first_seen=voted.first_seen,
            last_seen=voted.last_seen,
            frames=voted.frames,
            box=voted.box,
            fix=self.position_at(voted.captured_at) if with_position else None,
            capture_monotonic=voted.capture_monotonic,
            chars=voted.chars,
            region=",".join(self.region_of(voted.camera)),
            series=voted.series,
        )

    def _emit(self, voted: VotedRead) -> PlateRead | None:
        c = self.counters
        read = self._to_read(voted)
        matches = self._match(read)
        # A weak read is still reported when one of its candidates is on the watchlist.
        if voted.confidence < self.min_read_confidence and not matches:
            c.low_confidence += 1
            log.debug("read %s below confidence %.2f (%.2f), not reported", voted.text,
                      self.min_read_confidence, voted.confidence)
            return None
        c.reads += 1
        self._call(self.sink.on_read, read, voted)
        for entry, match in matches:
            c.hits += 1
            hit = Hit(event_id=str(uuid.uuid4()), read=read, entry=entry, match=match, raised_at=self.clock())
            self._call(self.sink.on_hit, hit, voted)
        return read

    def _any_candidate_listed(self, voted: VotedRead) -> bool:
        """The tracker's urgency test: is any candidate of this not-yet-emitted track on the watchlist?"""
        return bool(self._match(self._to_read(voted, with_position=False)))

    def _match(self, read: PlateRead) -> list[tuple[WatchEntry, Match]]:
        try:
            return self.matcher(read)
        except Exception:
            self.counters.errors += 1
            log.exception("watchlist match failed for %s", read.text)
            return []

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            self.counters.errors += 1
            log.exception("sink failed in %s", getattr(fn, "__name__", fn))

    # --- the loop -----------------------------------------------------------------------------

    def run(self, cameras: Sequence[FrameSourceLike], stop: threading.Event,
            idle: Callable[[], bool] | None = None) -> None:
        """Round-robin over cameras' newest frames until `stop` is set (or `idle()` says we are done)."""
        while not stop.is_set():
            self.counters.last_pass_monotonic = time.monotonic()
            got = False
            for cam in cameras:
                frame = cam.get(timeout=0.0 if len(cameras) > 1 else 0.1)
                if frame is None:
                    continue
                got = True
                try:
                    self.process(frame)
                except Exception:
                    self.counters.errors += 1
                    log.exception("frame %d of camera %s failed; skipped", frame.index, frame.camera)
            if not got:
                self.counters.last_frame_monotonic = self.counters.last_frame_monotonic or time.monotonic()
                self.flush()
                if idle is not None and idle():
                    break
                if len(cameras) > 1:
                    stop.wait(0.005)
        self.flush(final=True)
