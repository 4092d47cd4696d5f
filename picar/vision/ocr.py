"""Plate OCR at run time: BGR crops in, OcrResult out, one onnxruntime call per batch.

Everything model-specific (input size and colour, alphabet, pad symbol, slot count, thresholds) is read
from the sidecar JSON beside the .onnx file, the decode's priors from `<model>.grammar.json`
(`picar.vision.priors`). A CTC model's frames are decoded by one search (`picar.vision.ctc_grammar`)
through the region's grammar automaton (`picar.vision.automaton`); pre- and post-processing are pure
functions.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.types import CharRead, CtcFrames, OcrResult, Reading
from picar.vision.automaton import Automaton, compile_region
from picar.vision.ctc_grammar import clear_read, path_chars, prepare, search, substitutions, too_short
from picar.vision.grammar import grammars_for, shortest_plate
from picar.vision.priors import GrammarPriors, load_priors
from picar.vision.session import ModelError, create_session, load_sidecar, warm_up
from picar.vision.votes import vote

Region = str | Sequence[str]  # a region name ("md") or a list of them (["md", "ro"])


def preprocess(crops: Sequence[np.ndarray], height: int, width: int, channels: int = 1) -> np.ndarray:
    """Crops (BGR, BGRA or grayscale uint8, any size) -> uint8 batch (N, height, width, channels).

    The aspect ratio is not kept: one-row and two-row plates both fill the input. Shrinking averages
    pixels (INTER_AREA) so small characters do not alias; enlarging interpolates linearly.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (BGR), got {channels}")
    out = np.empty((len(crops), height, width, channels), np.uint8)
    for i, crop in enumerate(crops):
        img = np.asarray(crop)
        if img.size == 0 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
            raise ValueError(f"crop {i}: expected an HxW or HxWx{{1,3,4}} image, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"crop {i}: expected uint8 pixels, got {img.dtype}")
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if channels == 1 and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        elif channels == 3 and img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif channels == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        shrink = img.shape[0] > height or img.shape[1] > width
        resized = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i] = resized.reshape(height, width, channels)
    return out


_MIN_OPTION = 1e-3  # relative to the slot's best probability


def _text_candidates(slot_top: list[list[tuple[str, float]]], pad: str, limit: int) -> list[tuple[str, float]]:
    """Most probable texts from per-slot top-k lists (beam search on log probabilities). Slot paths that
    spell the same text (a pad in a different place) add up."""
    beams: list[tuple[float, str]] = [(0.0, "")]
    width = max(limit * 3, 8)  # paths spelling the same text merge later: keep spares
    for options in slot_top:
        opts = [(math.log(max(p, 1e-12)), "" if ch == pad else ch) for ch, p in options]
        if len(opts) == 1:  # a sure slot: extend every beam, nothing to rank
            lo, c = opts[0]
            beams = [(lp + lo, text + c) for lp, text in beams]
            continue
        beams = heapq.nlargest(width, [(lp + lo, text + c) for lp, text in beams for lo, c in opts])
    merged: dict[str, float] = {}
    for lp, text in beams:
        merged[text] = merged.get(text, 0.0) + math.exp(lp)
    ranked = sorted(merged.items(), key=lambda t: -t[1])
    return [(text, p) for text, p in ranked if text][:limit]


DECODERS = ("slots", "ctc")


def _slot_options(sample: np.ndarray, classes: str, k: int) -> list[list[tuple[str, float]]]:
    """Fixed slots: each slot's top-k classes. Options far below the slot's best cannot reach the
    candidate list; dropping them keeps the beam small on confident plates."""
    order = np.argsort(-sample, axis=1)[:, :k]
    return [[(classes[j], float(sample[s, j])) for n, j in enumerate(order[s])
             if n == 0 or sample[s, j] >= _MIN_OPTION * sample[s, order[s][0]]]
            for s in range(sample.shape[0])]


def decode(probs: np.ndarray, alphabet: str, pad: str, top_k: int = 3, max_candidates: int = 8,
           decoder: str = "slots", frames_per_row: int | None = None,
           automaton: Automaton | None = None, min_chars: int = 0) -> list[OcrResult]:
    """Model probabilities (N, positions, len(alphabet) + 1; class order alphabet then pad) -> results.

    `decoder` "ctc": positions are CTC frames and pad is the blank; the text, its characters and the
    candidates are the best paths of `automaton` through the frames (`picar.vision.ctc_grammar.search`;
    default: free text with flat priors); a crop whose likeliest frames read fewer than `min_chars`
    characters reads as no text, unsearched (`too_short`). "slots": each position is a character slot; the text is the
    best class of every slot, pads dropped, and the candidates come from a beam over the per-slot top-k.
    A read's confidence is the product of its characters' probabilities.
    """
    if len(pad) != 1 or pad in alphabet:
        raise ValueError(f"pad must be one character not in the alphabet, got {pad!r}")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    classes = alphabet + pad
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != len(classes):
        raise ValueError(f"probs must have shape (N, slots, {len(classes)}), got {arr.shape}")
    if decoder == "ctc":
        a = automaton or compile_region((), (), alphabet, _FLAT)
        frames = [prepare(sample, alphabet, frames_per_row) for sample in arr]
        plate = [not too_short(f, min_chars) for f in frames]
        clear = [clear_read(f, a) if p else None for f, p in zip(frames, plate, strict=True)]
        unclear = [f for f, r, p in zip(frames, clear, plate, strict=True) if r is None and p]
        searched = iter(search(unclear, a, max_candidates) if unclear else [])
        return [ctc_result(_with_substitutions(_paths(r, p, searched), f, a, max_candidates), f, max_candidates)
                for r, p, f in zip(clear, plate, frames, strict=True)]
    k = max(1, min(top_k, len(classes)))
    results = []
    for sample in arr:
        slot_top = _slot_options(sample, classes, k)
        chars = []
        conf = 1.0
        for options in slot_top:
            best, p = options[0]
            conf *= p
            if best == pad:
                continue
            alts = tuple((ch, q) for ch, q in options[1:k] if ch != pad)
            chars.append(CharRead(char=best, confidence=p, alternatives=alts))
        text = "".join(c.char for c in chars)
        candidates = _text_candidates(slot_top, pad, max_candidates)
        conf = max([conf] + [p for t, p in candidates if t == text])  # paths spelling the text add up
        if text and all(t != text for t, _ in candidates):
            candidates = [(text, conf), *candidates][:max_candidates]
        results.append(OcrResult(text=text, confidence=conf, chars=tuple(chars), candidates=tuple(candidates)))
    return results


_FLAT = GrammarPriors.uninformed()


def _paths(clear: Reading | None, plate: bool, searched: Iterator[list[Reading]]) -> list[Reading]:
    """A crop's paths: its clear read, else its search's (next in `searched`), none if it is no plate."""
    if clear is not None:
        return [clear]
    return next(searched) if plate else []


def _with_substitutions(paths: list[Reading], frames: CtcFrames, a: Automaton, limit: int) -> list[Reading]:
    """The search's paths, and the one-character changes of the best one where they are no path already."""
    if not paths:
        return paths
    seen = {p.text for p in paths}
    extra = [r for r in substitutions(paths[0], frames, a, limit) if r.text not in seen]
    return sorted(paths + extra, key=lambda r: -(r.model + r.prior))[:limit]


def ctc_result(paths: list[Reading], frames: CtcFrames, max_candidates: int = 8) -> OcrResult:
    """The read of one crop from its best paths (best first): the first path's text, series and
    characters; every path a candidate, its confidence the top's scaled by the difference in score."""
    if not paths:
        return OcrResult("", 0.0, (), (), frames=frames)
    top = paths[0]
    chars = path_chars(top, frames)
    conf = float(np.prod([c.confidence for c in chars]))
    best = top.model + top.prior
    candidates = tuple((p.text, conf * math.exp(p.model + p.prior - best)) for p in paths[:max_candidates])
    return OcrResult(top.text, conf, chars, candidates, top.series, tuple(paths), frames)


def _field(meta: dict[str, Any], path: str, kind: type | tuple[type, ...]) -> Any:
    node: Any = meta
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ModelError(f"OCR sidecar is missing field {path!r}")
        node = node[key]
    if not isinstance(node, kind) or isinstance(node, bool) and kind is not bool:
        raise ModelError(f"OCR sidecar field {path!r} has the wrong type: {node!r}")
    return node


# `read_voted` reads a crop again, cut tighter, only when its first read is below this: on the val crops the
# vote changes almost only such reads (models/README.ocr.md, session 11), at a third of the OCR work.
VOTE_BELOW = 0.9
# nor a read of fewer characters than this: a box around a sign or a wheel, which the detector also finds in
# photos, reads a character or three; voting those cost the 60 largest photos 4.4 ms of 23 at the median and
# changed no plate end to end (session 11)
VOTE_MIN_CHARS = 4


def crop_variants(crop: np.ndarray) -> list[np.ndarray]:
    """The crop as cut and trimmed by 2 % of its width and 3 % of its height on each side (a crop too small
    to trim: only as cut). A detector box is never exact, and a read that changes with the cut is the one to
    doubt. One other cut, not two: a third, looser one (padded by 4 % and 6 %) bought no plates on the eight
    real sets (without it 8 read right that were not and 5 lost, 3 of them Brazilian) for half as much OCR
    again on an unsure plate (models/README.ocr.md, "Session 15")."""
    h, w = crop.shape[:2]
    tx, ty = int(0.02 * w), int(0.03 * h)
    if not (tx and ty):
        return [crop]
    return [crop, crop[ty : h - ty, tx : w - tx]]


class PlateOcr:
    """One ONNX plate OCR session, configured entirely by its sidecar."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        model_path = Path(model_path)
        meta = load_sidecar(model_path)
        shape = _field(meta, "input.shape", list)
        if len(shape) != 4 or not all(isinstance(v, int) and v > 0 for v in shape[1:]):
            raise ModelError(f"OCR sidecar field 'input.shape' must be [N, H, W, C], got {shape!r}")
        if _field(meta, "input.layout", str) != "NHWC" or _field(meta, "input.dtype", str) != "uint8":
            raise ModelError("OCR sidecar: only NHWC uint8 inputs are supported (fields input.layout, input.dtype)")
        color = _field(meta, "input.color", str)
        if (color, shape[3]) not in (("gray", 1), ("bgr", 3)):
            raise ModelError(f"OCR sidecar: input.color {color!r} does not fit {shape[3]} channels")
        self._input_name: str = _field(meta, "input.name", str)
        self._output_name: str = _field(meta, "output.name", str)
        self._height, self._width, self._channels = int(shape[1]), int(shape[2]), int(shape[3])
        self.alphabet: str = _field(meta, "alphabet", str)
        self.pad: str = _field(meta, "pad", str)
        self.slots: int = _field(meta, "slots", int)  # output positions: character slots or CTC frames
        self.decoder: str = _field(meta, "decode.decoder", str)
        if self.decoder not in DECODERS:
            raise ModelError(f"OCR sidecar field 'decode.decoder' must be one of {DECODERS}, got {self.decoder!r}")
        self.top_k: int = _field(meta, "decode.top_k", int)
        # CTC frames are read row by row; how many make a row (optional: tells two-row reads apart)
        self.frames_per_row: int | None = meta["decode"].get("frames_per_row")
        if self.frames_per_row is not None and (isinstance(self.frames_per_row, bool) or not isinstance(
                self.frames_per_row, int) or not 0 < self.frames_per_row <= self.slots):
            raise ModelError(f"OCR sidecar field 'decode.frames_per_row' must be a whole number from 1 to "
                             f"{self.slots}, got {self.frames_per_row!r}")
        self.max_candidates: int = _field(meta, "decode.max_candidates", int)
        self.min_char_confidence: float = float(_field(meta, "thresholds.min_char_confidence", (int, float)))
        self.min_plate_confidence: float = float(_field(meta, "thresholds.min_plate_confidence", (int, float)))
        self.version: str = str(meta.get("version", ""))
        try:
            self.priors: GrammarPriors = load_priors(model_path)
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
        self._session = create_session(model_path, threads)
        inputs = {i.name: i for i in self._session.get_inputs()}
        if self._input_name not in inputs:
            raise ModelError(f"OCR model has no input {self._input_name!r} (has {sorted(inputs)})")
        out = {o.name: o for o in self._session.get_outputs()}
        if self._output_name not in out:
            raise ModelError(f"OCR model has no output {self._output_name!r} (has {sorted(out)})")
        oshape = out[self._output_name].shape
        if oshape[-1] != len(self.alphabet) + 1 or oshape[-2] != self.slots:
            raise ModelError(f"OCR model output shape {oshape} does not match sidecar slots={self.slots}, "
                             f"classes={len(self.alphabet) + 1}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one model input."""
        return (self._height, self._width, self._channels)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw output for a `preprocess`ed batch: per slot (or CTC frame) probabilities."""
        if len(batch) == 0:  # onnxruntime (1.32) fails on an empty batch: a Reshape error, or a segmentation fault
            return np.zeros((0, self.slots, len(self.alphabet) + 1), np.float32)
        return self._session.run([self._output_name], {self._input_name: batch})[0]

    def probabilities_of(self, crops: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """The model's output for crops (BGR, any size), run `batch` at a time."""
        parts = [self.probabilities(preprocess(crops[i: i + batch], self._height, self._width, self._channels))
                 for i in range(0, len(crops), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.slots, len(self.alphabet) + 1), np.float32)

    def automaton(self, region: Region | None) -> Automaton:
        """The grammar automaton the decode searches for `region` (a name, a list of names, or None:
        free text only). Raises ValueError for an unknown region name."""
        if region is None:
            return compile_region((), (), self.alphabet, self.priors)
        names = (region,) if isinstance(region, str) else tuple(region)
        return compile_region(grammars_for(names), tuple(n.lower() for n in names), self.alphabet, self.priors)

    def decode_probabilities(self, probs: np.ndarray, region: Region | None = None) -> list[OcrResult]:
        """Results from model output (`probabilities`), each the best path of the region's grammar; a crop
        whose likeliest frames spell fewer characters than any plate series (a sign, a bolt) reads as no text."""
        a = self.automaton(region) if self.decoder == "ctc" else None
        return decode(probs, self.alphabet, self.pad, self.top_k, self.max_candidates, self.decoder,
                      self.frames_per_row, a, shortest_plate())

    def read(self, crops: Sequence[np.ndarray], region: Region | None = None) -> list[OcrResult]:
        """Read every crop (BGR, any size) in one session run; results in crop order. `region` names the
        plate grammars (`picar.vision.grammar.REGIONS`, or a list of them, the most probable reading among
        them wins); without one, a read is free text. Each result names the series its text fits."""
        if len(crops) == 0:
            return []
        probs = self.probabilities(preprocess(crops, self._height, self._width, self._channels))
        return self.decode_probabilities(probs, region)

    def read_voted(self, crops: Sequence[np.ndarray], region: Region | None = None) -> list[OcrResult]:
        """Read each crop as cut; where that read is below VOTE_BELOW and has at least VOTE_MIN_CHARS
        characters, read it a little tighter too (`crop_variants`) and vote
        (`picar.vision.votes.vote`: each candidate's path scores summed over the cuts, the best one taken).
        For still photos, which have no second frame to vote with: the extra reads only where the first
        one is unsure and could be a plate."""
        if len(crops) == 0:
            return []
        out = self.read(crops, region)
        unsure = [i for i, r in enumerate(out) if r.confidence < VOTE_BELOW and len(r.text) >= VOTE_MIN_CHARS]
        seconds = {i: cuts[1] for i in unsure if len(cuts := crop_variants(crops[i])) > 1}  # none: too small
        for i, again in zip(seconds, self.read(list(seconds.values()), region), strict=True):
            out[i] = vote([out[i], again], self.max_candidates)
        return out

    def is_confident(self, result: OcrResult) -> bool:
        """Whether a read passes the sidecar's plate and per-character confidence thresholds."""
        return (bool(result.text) and result.confidence >= self.min_plate_confidence
                and all(c.confidence >= self.min_char_confidence for c in result.chars))

    def warm_up(self, regions: Sequence[Region | None] = ()) -> None:
        """Run the model on blank input at batch 1 and 4 and compile the grammars of `regions` (8-16 ms
        each), so the first real plate is not slow."""
        for n in (1, 4):
            blank = np.zeros((n, self._height, self._width, self._channels), np.uint8)
            warm_up(self._session, {self._input_name: blank}, runs=2)
        if self.decoder == "ctc":
            for region in regions:
                self.automaton(region)
