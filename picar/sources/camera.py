"""Camera input: a per-camera worker thread over a frame source (frame_sources.py) that stamps frames,
keeps only the newest one for live sources and reconnects with exponential back-off when a source drops.

A source never decides policy: it opens, reads one image (or None for a broken one), raises
`EndOfSource` at the end of a recording and `SourceLost` when a device or stream fails. The
`Camera` decides pacing, dropping, looping and reconnecting, so every backend behaves alike.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import cv2
import numpy as np

from picar.sources.frame_sources import EndOfSource, FrameSource, SourceLost, check_image, make_source
from picar.types import Frame

log = logging.getLogger("picar.camera")  # name kept from before the package move: log lines carry it

CameraState = Literal["starting", "streaming", "reconnecting", "finished", "stopped"]

# A live source that only delivers broken frames this many times in a row is reopened.
MAX_CONSECUTIVE_LIVE_BROKEN = 50


class Camera:
    """One camera on its own worker thread; `get()` hands out the newest stamped Frame.

    `source` is a source string (see `make_source`) or a FrameSource. Live sources keep only the
    newest frame and count the ones a slow consumer missed; recordings play at recorded pace
    when `realtime` (same dropping), else as fast as the consumer takes them with nothing
    dropped. `loop` restarts a recording at its end, otherwise the camera becomes `finished`.
    `fps_cap` skips frames beyond that rate (counted as `skipped`); `width`/`height` request a
    device resolution and resize whatever arrives at another size. A lost or unopenable source
    is retried after `reconnect_initial_s`, doubling up to `reconnect_max_s`; `io_timeout_s`
    bounds how long a network open or read may hang. Clocks are injectable for tests.
    """

    def __init__(
        self,
        name: str,
        source: str | FrameSource,
        realtime: bool = True,
        loop: bool = False,
        fps_cap: float = 0.0,
        width: int = 0,
        height: int = 0,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        io_timeout_s: float = 5.0,
        recorded_fps: float | None = None,
        buffer: int = 2,
    ) -> None:
        if reconnect_initial_s <= 0 or reconnect_max_s < reconnect_initial_s:
            raise ValueError(
                f"camera {name!r}: reconnect back-off must satisfy 0 < initial <= max, "
                f"got initial={reconnect_initial_s} max={reconnect_max_s}"
            )
        if fps_cap < 0:
            raise ValueError(f"camera {name!r}: fps_cap must be >= 0, got {fps_cap}")
        self.name = name
        if isinstance(source, str):
            try:
                source = make_source(source, width, height, recorded_fps, io_timeout_s)
            except ValueError as exc:
                raise ValueError(f"camera {name!r}: {exc}") from None
        self.source: FrameSource = source
        self.realtime = realtime
        self.loop = loop
        self.fps_cap = fps_cap
        self.width = width
        self.height = height
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self._wall = wall_clock
        self._mono = monotonic
        # Recordings played as fast as possible must lose nothing: the worker waits for the slot.
        self._block = not realtime and not self.source.live
        self._cond = threading.Condition()
        # A bounded queue of `buffer` frames: it absorbs one slow loop iteration without losing a frame;
        # beyond that the oldest frame is dropped and counted, so the loop always works near the newest.
        if buffer < 1:
            raise ValueError(f"camera {name!r}: buffer must be >= 1, got {buffer}")
        self._buffer_size = buffer
        self._queue: collections.deque[Frame] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: CameraState = "starting"
        self._index = 0
        self._frames = 0
        self._dropped = 0
        self._broken = 0
        self._skipped = 0
        self._reconnects = 0
        self._last_reason = ""
        self._last_mono: float | None = None
        self._stamps: collections.deque[float] = collections.deque(maxlen=30)
        self._resize_logged = False

    # ---- consumer side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"camera {self.name!r} already started")
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker and wait for it; a blocked stream read ends within the I/O timeout."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            self._state = "stopped"
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to `timeout` s; None on timeout or when done."""
        with self._cond:
            self._cond.wait_for(
                lambda: bool(self._queue) or self._state in ("finished", "stopped"), timeout
            )
            frame = self._queue.popleft() if self._queue else None
            self._cond.notify_all()
            return frame

    def wait_state(self, states: str | tuple[str, ...], timeout: float) -> bool:
        """Wait until the camera is in one of `states` (e.g. "streaming"); False on timeout."""
        wanted = (states,) if isinstance(states, str) else states
        with self._cond:
            return self._cond.wait_for(lambda: self._state in wanted, timeout)

    @property
    def finished(self) -> bool:
        """True once a recording (not looping) has ended; frames already read can still be taken."""
        return self._state == "finished"

    @property
    def state(self) -> CameraState:
        return self._state

    def status(self) -> dict[str, object]:
        """Counters and health for the daemon's status page and watchdog."""
        with self._cond:
            now = self._mono()
            stamps = list(self._stamps)
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            fps = (len(stamps) - 1) / span if span > 0 else 0.0
            if stamps and now - stamps[-1] > max(2.0, 2 * span):
                fps = 0.0  # nothing recent: a stalled camera must not show its old rate
            return {
                "name": self.name,
                "source": self.source.description,
                "state": self._state,
                "frames": self._frames,
                "dropped": self._dropped,
                "broken": self._broken,
                "skipped": self._skipped,
                "reconnects": self._reconnects,
                "last_frame_age_s": None if self._last_mono is None else round(now - self._last_mono, 3),
                "fps": round(fps, 2),
                "reason": self._last_reason,
            }

    # ---- worker side ---------------------------------------------------------------------

    def _set_state(self, state: CameraState, reason: str = "") -> None:
        with self._cond:
            if state == self._state:
                return
            previous, self._state = self._state, state
            self._last_reason = reason
            self._cond.notify_all()
        if state == "reconnecting":
            log.warning("camera %s: %s -> reconnecting: %s", self.name, previous, reason)
        else:
            log.info("camera %s: %s -> %s%s", self.name, previous, state, f" ({reason})" if reason else "")

    def _run(self) -> None:
        backoff = self.reconnect_initial_s
        lost_before = False
        try:
            while not self._stop.is_set():
                if lost_before:
                    with self._cond:
                        self._reconnects += 1
                try:
                    self.source.open()
                except (SourceLost, OSError, ValueError, cv2.error) as exc:
                    reason = f"open failed: {exc}"
                else:
                    outcome, reason, streamed = self._stream()
                    self.source.close()
                    if outcome == "stopped":
                        break
                    if outcome == "finished":
                        self._set_state("finished", reason)
                        return
                    if streamed:
                        backoff = self.reconnect_initial_s
                # Lost or never opened: wait, doubling the delay up to the maximum; no hot loop.
                self._set_state("reconnecting", reason)
                lost_before = True
                log.debug("camera %s: retry in %.2f s (%s)", self.name, backoff, reason)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
        finally:
            self.source.close()
        self._set_state("stopped")

    def _stream(self) -> tuple[Literal["stopped", "finished", "lost"], str, bool]:
        """Read until stop, end or loss; returns the outcome, its reason and whether frames came."""
        streamed = False
        pace_base: float | None = None
        next_due = 0.0
        broken_run = 0
        good_this_pass = False
        while not self._stop.is_set():
            try:
                image = self.source.read()
            except EndOfSource:
                if self.loop and not good_this_pass:
                    # An empty or all-corrupt recording would otherwise loop as fast as the CPU allows.
                    return "lost", f"no usable frame in {self.source.description}", streamed
                if self.loop:
                    good_this_pass = False
                    log.info("camera %s: %s ended, looping", self.name, self.source.description)
                    try:
                        self.source.open()
                    except (SourceLost, OSError, ValueError, cv2.error) as exc:
                        return "lost", f"reopen for loop failed: {exc}", streamed
                    pace_base = None
                    continue
                return "finished", f"end of {self.source.description}", streamed
            except (SourceLost, cv2.error) as exc:
                return "lost", str(exc), streamed
            if self.realtime and not self.source.live:
                # A replayed frame is "captured" when it is due, so it is stamped after the wait.
                pace_base = self._pace(pace_base)
                if self._stop.is_set():
                    break
            captured_mono = self._mono()
            captured_wall = self._wall()
            problem = check_image(image)
            if problem is not None:
                with self._cond:
                    self._broken += 1
                broken_run += 1
                log.debug("camera %s: broken frame skipped: %s", self.name, problem)
                if self.source.live and broken_run >= MAX_CONSECUTIVE_LIVE_BROKEN:
                    return "lost", f"{broken_run} broken frames in a row ({problem})", streamed
                continue
            broken_run = 0
            good_this_pass = True
            assert image is not None
            if self.fps_cap > 0:
                if captured_mono < next_due:
                    with self._cond:
                        self._skipped += 1
                    continue
                period = 1.0 / self.fps_cap
                next_due = next_due + period if next_due + period > captured_mono else captured_mono + period
            if not streamed:
                streamed = True
                self._set_state("streaming", self.source.description)
            self._deliver(self._fit(image), captured_wall, captured_mono)
        return "stopped", "", streamed

    def _pace(self, base: float | None) -> float:
        """Wait until the last read frame is due at recorded pace; returns the (re)based start."""
        offset = self.source.frame_time() or 0.0
        now = self._mono()
        if base is None or now - (base + offset) > 1.0:
            # First frame, after a loop, or fallen more than a second behind: restart the schedule.
            return now - offset
        delay = base + offset - now
        if delay > 0:
            self._stop.wait(delay)
        return base

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if not (self.width and self.height) or image.shape[:2] == (self.height, self.width):
            return image
        if not self._resize_logged:
            self._resize_logged = True
            log.info(
                "camera %s: source gives %dx%d, resizing to %dx%d",
                self.name, image.shape[1], image.shape[0], self.width, self.height,
            )
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def _deliver(self, image: np.ndarray, wall: float, mono: float) -> None:
        with self._cond:
            if self._block:
                self._cond.wait_for(lambda: len(self._queue) < self._buffer_size or self._stop.is_set())
                if self._stop.is_set():
                    return
            elif len(self._queue) >= self._buffer_size:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(Frame(self.name, self._index, wall, mono, image))
            self._index += 1
            self._frames += 1
            self._last_mono = mono
            self._stamps.append(mono)
            self._cond.notify_all()


def open_camera(name: str, source: str, **opts: Any) -> Camera:
    """A Camera (not yet started) for a device, stream URL, video file or image folder.

    `opts` are Camera's keyword arguments. Raises ValueError naming the camera and the value
    when the source string fits no backend.
    """
    return Camera(name, source, **opts)
