"""Camera input: frame sources (V4L2 device, network stream, video file, image folder) and a
per-camera worker thread that stamps frames, keeps only the newest one for live sources and
reconnects with exponential back-off when a source drops.

A source never decides policy: it opens, reads one image (or None for a broken one), raises
`EndOfSource` at the end of a recording and `SourceLost` when a device or stream fails. The
`Camera` decides pacing, dropping, looping and reconnecting, so every backend behaves alike.
"""

from __future__ import annotations

import collections
import csv
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from picar.types import Frame

log = logging.getLogger("picar.camera")  # name kept from before the package move: log lines carry it

CameraState = Literal["starting", "streaming", "reconnecting", "finished", "stopped"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")
DEFAULT_FOLDER_FPS = 10.0
DEFAULT_VIDEO_FPS = 25.0
# A file whose reads keep failing this many times in a row is treated as ended, not as broken frames.
MAX_CONSECUTIVE_FILE_FAILURES = 25
# A live source that only delivers broken frames this many times in a row is reopened.
MAX_CONSECUTIVE_LIVE_BROKEN = 50


class SourceLost(OSError):
    """The device or stream failed (cannot open, read error, vanished, ended while live)."""


class EndOfSource(Exception):
    """A recording (video file, image folder) has no more frames."""


class FrameSource(Protocol):
    """One backend. `live` sources are reconnected when they end; recordings finish or loop."""

    description: str
    live: bool

    def open(self) -> None:
        """Open (or reopen, from the first frame) the source; raises SourceLost on failure."""
        ...

    def read(self) -> np.ndarray | None:
        """Next image, or None for a broken one. Raises EndOfSource or SourceLost."""
        ...

    def frame_time(self) -> float | None:
        """Recorded time of the last read frame in seconds from the start; None for live sources."""
        ...

    def close(self) -> None:
        """Release the device, stream or file; safe to call twice."""
        ...


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and status pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _cap_prop(name: str) -> int | None:
    value = getattr(cv2, name, None)
    return int(value) if value is not None else None


class OpenCvSource:
    """A V4L2 device, a network stream (RTSP/HTTP MJPEG, anything FFmpeg reads) or a video file."""

    def __init__(
        self,
        target: str | int,
        kind: Literal["device", "stream", "file"],
        width: int = 0,
        height: int = 0,
        io_timeout_s: float = 5.0,
        fps: float | None = None,
    ) -> None:
        self.target = target
        self.kind = kind
        self.live = kind != "file"
        self.description = f"{kind} {redact_url(target) if isinstance(target, str) else target}"
        self._width = width
        self._height = height
        self._io_timeout_ms = max(1, int(io_timeout_s * 1000))
        self._fps_override = fps
        self._cap: cv2.VideoCapture | None = None
        self._fps = DEFAULT_VIDEO_FPS
        self._frame_count = 0.0
        self._read_count = 0
        self._failures = 0
        self._fail_position = -1.0

    def open(self) -> None:
        if self.kind == "file" and self._cap is not None and self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            # Rewind instead of reopening: OpenCV serialises every FFmpeg open behind one global
            # lock, so a reopen could wait on another thread's slow network open.
            self._read_count = 0
            self._failures = 0
            self._fail_position = -1.0
            return
        self.close()
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            raise SourceLost(f"cannot open {self.description}")
        if self.kind == "device":
            if self._width and self._height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
            # One buffered frame: a slow consumer should see the newest image, not a queue of old ones.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = self._fps_override or cap.get(cv2.CAP_PROP_FPS)
        self._fps = fps if math.isfinite(fps) and 0.0 < fps < 1000.0 else DEFAULT_VIDEO_FPS
        self._frame_count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if self.kind == "file" else 0.0
        self._read_count = 0
        self._failures = 0
        self._fail_position = -1.0
        self._cap = cap

    def _make_capture(self) -> cv2.VideoCapture:
        if self.kind == "device":
            return cv2.VideoCapture(self.target, cv2.CAP_V4L2)
        if self.kind == "stream":
            params: list[int] = []
            for prop in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
                pid = _cap_prop(prop)
                if pid is not None:
                    params += [pid, self._io_timeout_ms]
            return cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG)

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceLost(f"{self.description} is not open")
        ok, image = self._cap.read()
        if ok and image is not None:
            self._read_count += 1
            self._failures = 0
            return image
        if self.kind != "file":
            raise SourceLost(f"read failed on {self.description} (device gone or stream ended)")
        # A file: the end, or a frame the decoder rejected somewhere in the middle.
        self._failures += 1
        position = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
        # Frame counts in containers are estimates: a position that no longer moves is the end too.
        stuck = self._failures > 1 and position == self._fail_position
        self._fail_position = position
        at_end = self._frame_count <= 0 or position >= self._frame_count - 1 or stuck
        if at_end or self._failures >= MAX_CONSECUTIVE_FILE_FAILURES:
            raise EndOfSource(self.description)
        self._read_count += 1
        return None

    def frame_time(self) -> float | None:
        if self.live:
            return None
        return max(0, self._read_count - 1) / self._fps

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass(frozen=True)
class FolderEntry:
    """One image of a folder recording and its time (seconds from the first frame)."""

    path: Path
    time: float


def read_folder_fps(folder: Path, default: float = DEFAULT_FOLDER_FPS) -> float:
    """The folder's frame rate from `fps.txt` (one number), else `default`."""
    fps_file = folder / "fps.txt"
    if not fps_file.is_file():
        return default
    text = fps_file.read_text(encoding="utf-8").strip()
    try:
        fps = float(text)
    except ValueError:
        raise ValueError(f"{fps_file}: expected a frame rate such as 10, got {text!r}") from None
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{fps_file}: frame rate must be a positive number, got {text!r}")
    return fps


def list_folder(folder: Path, fps: float | None = None) -> list[FolderEntry]:
    """The folder's frames in order with their times.

    An explicit `fps` plays every image sorted by name at that rate. Otherwise a recorder's
    `frames.csv` (index, file, captured_at) gives order and timing; failing that, images
    sorted by name at the rate in `fps.txt` (default 10).
    """
    csv_path = folder / "frames.csv"
    if fps is None and csv_path.is_file():
        return _entries_from_csv(folder, csv_path)
    rate = fps if fps is not None else read_folder_fps(folder)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"folder fps must be a positive number, got {rate!r}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [FolderEntry(path, i / rate) for i, path in enumerate(images)]


def _entries_from_csv(folder: Path, csv_path: Path) -> list[FolderEntry]:
    entries: list[FolderEntry] = []
    first: float | None = None
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "captured_at"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}")
        for line_no, row in enumerate(reader, start=2):
            try:
                stamp = float(row["captured_at"])
            except (TypeError, ValueError):
                raise ValueError(
                    f"{csv_path} line {line_no}: captured_at {row['captured_at']!r} is not a number"
                ) from None
            first = stamp if first is None else first
            entries.append(FolderEntry(folder / row["file"], max(0.0, stamp - first)))
    return entries


def _is_truncated_jpeg(path: Path, data: bytes) -> bool:
    # libjpeg decodes a cut-off file into a half-grey image with only a warning; a recorder crash
    # leaves exactly such files, so a JPEG must end with its EOI marker to count as whole.
    return path.suffix.lower() in (".jpg", ".jpeg") and not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9")


class FolderSource:
    """A folder of images played in order; corrupt or missing files are logged by name and skipped."""

    live = False

    def __init__(self, folder: Path | str, fps: float | None = None) -> None:
        self.folder = Path(folder)
        self.description = f"folder {self.folder}"
        self._fps = fps
        self._entries: list[FolderEntry] = []
        self._pos = 0
        self._time: float | None = None
        self.skipped_files = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceLost(f"{self.description} does not exist")
        self._entries = list_folder(self.folder, self._fps)
        self._pos = 0
        self._time = None

    def read(self) -> np.ndarray | None:
        if self._pos >= len(self._entries):
            raise EndOfSource(self.description)
        entry = self._entries[self._pos]
        self._pos += 1
        self._time = entry.time
        image = self._load(entry.path)
        if image is None:
            self.skipped_files += 1
        return image

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("skipping unreadable image %s: %s", path, exc)
            return None
        if _is_truncated_jpeg(path, data):
            log.warning("skipping truncated JPEG %s", path)
            return None
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("skipping corrupt image %s (cannot decode)", path)
        return image

    def frame_time(self) -> float | None:
        return self._time

    def close(self) -> None:
        self._entries = []


def check_image(image: object) -> str | None:
    """Why `image` is not a usable BGR frame, or None if it is."""
    if image is None:
        return "no image"
    if not isinstance(image, np.ndarray):
        return f"not an array ({type(image).__name__})"
    if image.size == 0 or 0 in image.shape:
        return f"empty image {image.shape}"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"wrong shape {image.shape}, expected HxWx3"
    if image.dtype != np.uint8:
        return f"wrong dtype {image.dtype}, expected uint8"
    return None


_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


def make_source(
    source: str,
    width: int = 0,
    height: int = 0,
    fps: float | None = None,
    io_timeout_s: float = 5.0,
) -> FrameSource:
    """Choose the backend from the source string; ValueError naming the value if none fits.

    `fps` paces a recording (folder or video file) instead of its own timing.
    """
    text = source.strip()
    if text.isdigit():
        return OpenCvSource(int(text), "device", width, height, io_timeout_s)
    if _DEVICE_PATH.match(text) or text.startswith("/dev/v4l/"):
        # A USB camera may be plugged in later: the Camera retries opening it with back-off.
        return OpenCvSource(text, "device", width, height, io_timeout_s)
    if text.lower().startswith(STREAM_SCHEMES):
        return OpenCvSource(text, "stream", width, height, io_timeout_s)
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderSource(path, fps)
    if path.is_file():
        return OpenCvSource(str(path), "file", width, height, io_timeout_s, fps)
    raise ValueError(
        f"camera source {source!r} is neither a device (/dev/videoN or an index such as 0), "
        f"a stream URL ({', '.join(s.rstrip('/:') for s in STREAM_SCHEMES)}), "
        "an existing video file nor a folder of images"
    )


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
