"""Follow each plate across frames and vote one best read per vehicle pass.

A track collects the OCR reads of one physical plate. Its read is the text with the most evidence over
all its frames (`picar.vision.votes.vote`: each candidate's path scores summed over the frames, one
decision), so it is always a text some frame read whole. It is emitted once: as soon as that read is
confident enough (so a hit reaches the officer within a frame or two), or when the plate leaves the view.
A per-plate cooldown stops a parked car being reported again and again. Once a track's read is out,
its plate is not read again (`settled`): later frames only keep the track alive, so the loop spends the
OCR on plates still undecided. A track that votes a text shorter than every plate series (a stripe, a sign:
`II`, `HH`) is settled the same way but not reported (as `picar read` drops such a read in a photo), unless
one of its candidates is on the watchlist.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from picar.types import CharRead, Detection, OcrResult, PlateObservation
from picar.vision.grammar import shortest_plate
from picar.vision.votes import vote as vote_texts


@dataclass(frozen=True)
class TrackerSettings:
    iou: float = 0.2
    max_gap_s: float = 1.5
    min_frames: int = 2
    cooldown_s: float = 60.0
    max_tracks: int = 64
    emit_confidence: float = 0.6  # voted confidence at which a track is emitted early
    max_candidates: int = 8
    # Reads a track votes over: a car stopped behind the patrol car for minutes is read every frame, and
    # every vote scores each text on each read. Past this, the least confident read (never the last) goes.
    max_reads: int = 24


@dataclass(frozen=True, eq=False)
class VotedRead:
    """The voted result of one track, before it is stamped with an event id and a position."""

    camera: str
    text: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    chars: tuple[CharRead, ...]
    captured_at: float
    capture_monotonic: float
    first_seen: float
    last_seen: float
    frames: int
    box: tuple[int, int, int, int]
    crop: np.ndarray | None = None
    frame: np.ndarray | None = None
    series: str | None = None  # the grammar series the text fits; None: free text


@dataclass(eq=False)
class _Track:
    track_id: int
    camera: str
    observations: list[PlateObservation] = field(default_factory=list)
    best_crop: np.ndarray | None = None
    best_frame: np.ndarray | None = None
    best_conf: float = -1.0
    emitted: bool = False
    first_seen: float = 0.0
    frames: int = 0  # every frame that saw the plate, also those whose reads were let go (max_reads)
    scored: dict[int, dict[str, float]] = field(default_factory=dict)  # texts scored on each frame's read

    @property
    def last(self) -> PlateObservation:
        return self.observations[-1]


def iou(a: Detection, b: Detection) -> float:
    x1, y1 = max(a.x, b.x), max(a.y, b.y)
    x2, y2 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _near(a: Detection, b: Detection) -> bool:
    """Centres within two plate widths: a fast plate may not overlap its last box."""
    ax, ay = a.x + a.w / 2, a.y + a.h / 2
    bx, by = b.x + b.w / 2, b.y + b.h / 2
    reach = 2.0 * max(a.w, b.w)
    return abs(ax - bx) <= reach and abs(ay - by) <= reach


def _similar_text(a: str, b: str) -> bool:
    """Two reads that could be one plate: at most two characters inserted, dropped or changed, and lengths
    at most one apart (`7KTR214` and `KTR214`: a frame's edge read as a character)."""
    if not a or not b or abs(len(a) - len(b)) > 1:
        return False
    return _edits(a, b) <= 2


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (plates are short: the plain table is fast enough)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def vote(observations: list[PlateObservation], max_candidates: int = 8,
         scored: dict[int, dict[str, float]] | None = None) -> OcrResult:
    """The read of one track: the text with the most evidence over its frames (`picar.vision.votes.vote`)."""
    return vote_texts([o.ocr for o in observations], max_candidates, scored)


class PlateTracker:
    """Per-camera tracks of plates; emits one VotedRead per track (vehicle pass)."""

    def __init__(self, settings: TrackerSettings | None = None,
                 urgent: Callable[[VotedRead], bool] | None = None) -> None:
        self.settings = settings or TrackerSettings()
        # A track whose vote is not yet confident is still emitted at once when `urgent` says so
        # (its candidates are on the watchlist): the officer hears of a hit within frames, not seconds.
        self.urgent = urgent
        self._tracks: dict[str, list[_Track]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._last_emitted: dict[str, float] = {}
        self.suppressed = 0
        self.emitted = 0
        self.not_plates = 0  # tracks settled on a text shorter than any plate, not reported

    def active_tracks(self) -> int:
        return sum(len(t) for t in self._tracks.values())

    def settled(self, camera: str, detections: Sequence[Detection], now: float) -> list[int | None]:
        """For each of a frame's boxes, the track whose read is already out that the box continues (it
        overlaps that track's last box by at least `iou`, more than any other live track's), else None.
        Such a box need not be read: pass its track id to `update` in `follows` (with any OCR result)."""
        tracks = [t for t in self._tracks[camera] if now - t.last.captured_at <= self.settings.max_gap_s]
        claimed: set[int] = set()
        out: list[int | None] = []
        for det in detections:
            scored = [(iou(t.last.detection, det), t) for t in tracks if t.track_id not in claimed]
            best = max(scored, key=lambda st: st[0], default=(0.0, None))
            track = best[1]
            if track is not None and track.emitted and best[0] >= self.settings.iou:
                claimed.add(track.track_id)
                out.append(track.track_id)
            else:
                out.append(None)
        return out

    def update(
        self,
        camera: str,
        observations: list[PlateObservation],
        crops: Sequence[np.ndarray | None] | None = None,
        frame: np.ndarray | None = None,
        now: float | None = None,
        follows: Sequence[int | None] | None = None,
    ) -> list[VotedRead]:
        """Add one frame's observations; return reads that became ready (early or ended tracks).
        `follows[k]`, where given, is the settled track (`settled`) observation k continues unread: it keeps
        that track alive and carries the track's last read; if the track is gone it is let go."""
        tracks = self._tracks[camera]
        now = now if now is not None else (observations[0].captured_at if observations else 0.0)
        out = self._expire(camera, now)
        used: set[int] = set()
        unread = follows or [None] * len(observations)
        for obs, track_id in zip(observations, unread, strict=True):
            track = next((t for t in tracks if t.track_id == track_id), None) if track_id is not None else None
            if track is not None and track.track_id not in used:
                used.add(track.track_id)
                self._add(track, replace(obs, ocr=track.last.ocr))
        for k, obs in enumerate(observations):
            if unread[k] is not None:
                continue
            track = self._associate(tracks, obs, used)
            if track is None:
                if len(tracks) >= self.settings.max_tracks:
                    out.extend(self._finish(tracks.pop(0)))
                track = _Track(track_id=next(self._ids), camera=camera, first_seen=obs.captured_at)
                tracks.append(track)
            used.add(track.track_id)
            self._add(track, obs)
            if obs.ocr.confidence > track.best_conf:
                track.best_conf = obs.ocr.confidence
                track.best_crop = crops[k] if crops is not None and k < len(crops) else None
                track.best_frame = frame
            if not track.emitted and len(track.observations) >= self.settings.min_frames:
                read = self._voted(track)
                if read is not None and (read.confidence >= self.settings.emit_confidence
                                         or (self.urgent is not None and self.urgent(read))):
                    out.extend(self._emit(track, read))
        return out

    def _add(self, track: _Track, obs: PlateObservation) -> None:
        track.observations.append(obs)
        track.frames += 1
        if len(track.observations) > self.settings.max_reads:
            weakest = min(range(len(track.observations) - 1), key=lambda i: track.observations[i].ocr.confidence)
            gone = track.observations.pop(weakest)
            track.scored.pop(id(gone.ocr), None)

    def flush(self, now: float) -> list[VotedRead]:
        """Emit the reads of tracks that have not been seen for max_gap_s (call once per loop)."""
        out: list[VotedRead] = []
        for camera in list(self._tracks):
            out.extend(self._expire(camera, now))
        return out

    def close(self) -> list[VotedRead]:
        """End every track (shutdown or end of a clip) and emit what is pending."""
        out: list[VotedRead] = []
        for tracks in self._tracks.values():
            for t in tracks:
                out.extend(self._finish(t))
            tracks.clear()
        return out

    def _expire(self, camera: str, now: float) -> list[VotedRead]:
        tracks = self._tracks[camera]
        out: list[VotedRead] = []
        keep: list[_Track] = []
        for t in tracks:
            if now - t.last.captured_at > self.settings.max_gap_s:
                out.extend(self._finish(t))
            else:
                keep.append(t)
        tracks[:] = keep
        return out

    def _associate(self, tracks: list[_Track], obs: PlateObservation, used: set[int]) -> _Track | None:
        best: _Track | None = None
        best_score = 0.0
        for t in tracks:
            if t.track_id in used:
                continue
            last = t.last
            overlap = iou(last.detection, obs.detection)
            score = overlap
            if overlap < self.settings.iou:
                if _near(last.detection, obs.detection) and _similar_text(last.ocr.text, obs.ocr.text):
                    score = self.settings.iou  # weak but valid link
                else:
                    continue
            if score > best_score:
                best, best_score = t, score
        return best

    def _finish(self, track: _Track) -> list[VotedRead]:
        if track.emitted or len(track.observations) < self.settings.min_frames:
            return []
        read = self._voted(track)
        return self._emit(track, read) if read is not None else []

    def _emit(self, track: _Track, read: VotedRead) -> list[VotedRead]:
        track.emitted = True
        if len(read.text) < shortest_plate() and not (self.urgent is not None and self.urgent(read)):
            self.not_plates += 1  # not a plate, unless a candidate is on the watchlist: a hit is never dropped
            return []
        last = self._last_emitted.get(read.text)
        if last is not None and read.captured_at - last < self.settings.cooldown_s:
            self.suppressed += 1
            return []
        self._last_emitted[read.text] = read.captured_at
        self._prune_cooldowns(read.captured_at)
        self.emitted += 1
        return [read]

    def _prune_cooldowns(self, now: float) -> None:
        if len(self._last_emitted) > 4096:
            horizon = now - self.settings.cooldown_s
            self._last_emitted = {k: v for k, v in self._last_emitted.items() if v >= horizon}

    def _voted(self, track: _Track) -> VotedRead | None:
        voted = vote(track.observations, self.settings.max_candidates, track.scored)
        if not voted.text:
            return None
        best = max(track.observations, key=lambda o: o.ocr.confidence)
        trigger = track.last
        return VotedRead(
            camera=track.camera,
            text=voted.text,
            confidence=voted.confidence,
            candidates=voted.candidates,
            chars=voted.chars,
            captured_at=trigger.captured_at,
            capture_monotonic=trigger.monotonic,
            first_seen=track.first_seen,
            last_seen=trigger.captured_at,
            frames=track.frames,
            box=best.detection.box,
            crop=track.best_crop,
            frame=track.best_frame,
            series=voted.series,
        )
