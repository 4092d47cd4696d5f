"""The things that flow through the pipeline: frozen dataclasses, no behaviour beyond small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from picar.isotime import utc_iso

FixQuality = Literal["none", "2d", "3d"]


@dataclass(frozen=True)
class Fix:
    """A GPS position. A receiver without a fix yields no Fix at all, never 0,0."""

    time: datetime  # UTC, from the receiver
    lat: float
    lon: float
    fix: FixQuality
    speed_kmh: float | None = None
    heading_deg: float | None = None
    sats: int | None = None
    hdop: float | None = None
    alt_m: float | None = None
    received_monotonic: float = 0.0  # time.monotonic() when the sentence arrived

    def to_json(self) -> dict[str, object]:
        return {
            "time": utc_iso(self.time),
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "fix": self.fix,
            "speed_kmh": None if self.speed_kmh is None else round(self.speed_kmh, 2),
            "heading_deg": None if self.heading_deg is None else round(self.heading_deg, 1),
            "sats": self.sats,
            "hdop": self.hdop,
        }


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image. `captured_at` is wall-clock UTC seconds, `monotonic` for latency."""

    camera: str
    index: int
    captured_at: float
    monotonic: float
    image: np.ndarray  # HxWx3 uint8 BGR


@dataclass(frozen=True)
class Detection:
    """A plate found in a frame: box in pixels (x, y, w, h) and detector score."""

    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class CharRead:
    """One character slot of an OCR read, with the likely alternatives (best first)."""

    char: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, eq=False)
class CtcFrames:
    """One crop's CTC frames as the decode searches them (`picar.vision.ctc_grammar.prepare`): runs the
    model is sure of merged. Kept with a read so that votes can score any text on it."""

    logp: np.ndarray  # (frames, classes + blank) log probabilities, summed over merged frames
    peak: np.ndarray  # (frames, classes + blank) probabilities, the most of the merged frames
    cross: np.ndarray  # (frames,) bool: the frames moved to a lower row between this frame and the one before
    alphabet: str  # the classes before the blank


@dataclass(frozen=True)
class Reading:
    """One text the decode found for a crop, with what the model and the grammar each give it."""

    text: str
    series: str | None  # the grammar series it fits (e.g. "md.current"); None: free text
    model: float  # log probability of its best CTC path through the crop's frames (the model's own)
    prior: float  # log weight the region's grammar gives the text (scaled priors)
    runs: tuple[tuple[int, int, int], ...] = ()  # (class, first frame, frame after the last) per character


@dataclass(frozen=True)
class OcrResult:
    """The OCR's view of one plate crop: top text, per-character detail and candidate texts."""

    text: str
    confidence: float
    chars: tuple[CharRead, ...]
    candidates: tuple[tuple[str, float], ...] = ()  # (text, confidence), best first, top text included
    series: str | None = None  # the grammar series the text fits; None: free text or no region
    readings: tuple[Reading, ...] = field(default=(), compare=False)  # the candidates' scores, best first
    frames: CtcFrames | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PlateObservation:
    """One plate in one frame: where it was and what the OCR read."""

    camera: str
    frame_index: int
    captured_at: float
    monotonic: float
    detection: Detection
    ocr: OcrResult


@dataclass(frozen=True)
class PlateRead:
    """The one best read per vehicle pass, voted across the frames of a track."""

    event_id: str
    vehicle_id: str
    camera: str
    text: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    captured_at: float  # wall-clock UTC seconds of the best frame
    first_seen: float
    last_seen: float
    frames: int
    box: tuple[int, int, int, int]
    fix: Fix | None
    capture_monotonic: float = 0.0  # of the best frame, for latency measurement
    chars: tuple[CharRead, ...] = ()
    region: str | None = None
    series: str | None = None  # the grammar series the text fits (e.g. "md.police"); None: free text


@dataclass(frozen=True)
class WatchEntry:
    """One watchlist entry as HQ issued it."""

    plate: str
    list: str = "stolen_vehicle"
    region: str | None = None
    priority: int = 2  # 1 highest
    covert: bool = False
    effective: datetime | None = None
    expires: datetime | None = None
    description: str = ""
    reason: str = ""
    notes: str = ""
    source: str = ""


@dataclass(frozen=True)
class Match:
    """How a read matched an entry: exact, confusable characters, or edit distance."""

    kind: Literal["exact", "confusable", "edit", "wildcard"]
    read_text: str  # the candidate text that matched
    distance: int = 0
    differences: tuple[tuple[int, str, str], ...] = ()  # (position, read char, listed char)

    def describe(self) -> str:
        if not self.differences:
            return self.kind
        diffs = ", ".join(f"pos {i + 1}: read {a or '-'} listed {b or '-'}" for i, a, b in self.differences)
        return f"{self.kind} ({diffs})"


# Why an officer rejects a hit: the page's buttons (station/static/index.html, a test keeps them in step),
# the page's server and the daemon all take them from here.
REJECT_REASONS = ("misread", "wrong_state", "not_the_vehicle", "already_handled", "other")


@dataclass(frozen=True)
class Hit:
    """A read that matched the watchlist."""

    event_id: str
    read: PlateRead
    entry: WatchEntry
    match: Match
    raised_at: float = field(default=0.0)
