"""Frame sources, one per backend: V4L2 device, network stream and video file (OpenCV), image folder.

A source never decides policy: it opens, reads one image (or None for a broken one), raises `EndOfSource`
at the end of a recording and `SourceLost` when a device or stream fails. The `Camera` (camera.py) decides
pacing, dropping, looping and reconnecting, so every backend behaves alike.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

log = logging.getLogger("picar.camera")  # the camera logger, whichever backend

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")
DEFAULT_FOLDER_FPS = 10.0
DEFAULT_VIDEO_FPS = 25.0
# A file whose reads keep failing this many times in a row is treated as ended, not as broken frames.
MAX_CONSECUTIVE_FILE_FAILURES = 25
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
