"""Plate OCR at run time: BGR crops in, OcrResult out, one onnxruntime call per batch.

Everything model-specific (input size and colour, alphabet, pad symbol, slot count, thresholds) is read
from the sidecar JSON beside the .onnx file. Pre- and post-processing are pure functions.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.types import CharRead, OcrResult
from picar.vision.formats import ZERO_REGIONS, apply_region, fit_region, settle_digit_run, settle_top_line
from picar.vision.session import ModelError, create_session, load_sidecar, warm_up
from picar.vision.votes import vote_reads, vote_texts


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


def _ctc_options(sample: np.ndarray, classes: str, k: int, blank: int) -> list[list[tuple[str, float]]]:
    """CTC frames -> slots: one slot per greedy character run (top-k at its peak frame, blank as the
    "spurious character" option) and an optional slot inside blank runs where a character nearly won."""
    best = np.argmax(sample, axis=1)
    run = np.concatenate(([0], np.cumsum(best[1:] != best[:-1])))  # run number of every frame
    # A character next to a run of the same character would only lengthen that run (CTC merges
    # repeats), so it is no candidate for an extra character there.
    chars = sample[:, :blank].copy()
    frames = np.arange(len(best))
    after = frames[1:][best[:-1] != blank]  # frames that follow a character frame
    chars[after, best[after - 1]] = -1.0
    before = frames[:-1][best[1:] != blank]  # frames that precede a character frame
    chars[before, best[before + 1]] = -1.0
    runner = np.argmax(chars, axis=1)
    runner_p = sample[frames, runner] * (chars[frames, runner] >= 0)
    # The peak frame of every run: a character run's most confident frame, a blank run's frame where
    # some character came closest (each run's first frame once sorted by run, then score).
    score = np.where(best == blank, runner_p, sample.max(axis=1))
    by_run = np.lexsort((-score, run))
    firsts = np.concatenate(([0], np.flatnonzero(run[by_run][1:] != run[by_run][:-1]) + 1))
    peaks = by_run[firsts].tolist()
    peak_rows = sample[peaks]
    order = np.argsort(-peak_rows, axis=1)[:, : k + 1].tolist()
    rows = peak_rows.tolist()
    slots: list[list[tuple[str, float]]] = []
    for n, f in enumerate(peaks):
        j = int(best[f])
        frame = rows[n]
        if j == blank:
            c = int(runner[f])
            if frame[c] >= 0.05:
                slots.append([(classes[blank], frame[blank]), (classes[c], frame[c])])
            continue
        floor = _MIN_OPTION * frame[j]
        opts = [(classes[i], frame[i]) for i in order[n] if i == j or frame[i] >= floor]
        opts.sort(key=lambda o: (o[0] != classes[j], -o[1]))  # the greedy character first
        slots.append(opts[: k + 1])
    return slots


def decode(probs: np.ndarray, alphabet: str, pad: str, top_k: int = 3, max_candidates: int = 8,
           decoder: str = "slots") -> list[OcrResult]:
    """Model probabilities (N, positions, len(alphabet) + 1; class order alphabet then pad) -> results.

    `decoder` "slots": each position is a character slot; "ctc": positions are CTC frames and pad is
    the blank (runs collapse, blanks drop). The text is the best class of every slot, pads dropped;
    its confidence is the product of the slot probabilities (a pad that wins counts too: a missed
    character is an error). Each character carries its probability and up to `top_k - 1` alternative
    characters; `candidates` holds up to `max_candidates` texts from a beam over the per-slot top-k.
    """
    if len(pad) != 1 or pad in alphabet:
        raise ValueError(f"pad must be one character not in the alphabet, got {pad!r}")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    classes = alphabet + pad
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != len(classes):
        raise ValueError(f"probs must have shape (N, slots, {len(classes)}), got {arr.shape}")
    k = max(1, min(top_k, len(classes)))
    results = []
    for sample in arr:
        if decoder == "slots":
            slot_top = _slot_options(sample, classes, k)
        else:
            slot_top = _ctc_options(sample, classes, k, len(alphabet))
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


def _field(meta: dict[str, Any], path: str, kind: type | tuple[type, ...]) -> Any:
    node: Any = meta
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ModelError(f"OCR sidecar is missing field {path!r}")
        node = node[key]
    if not isinstance(node, kind) or isinstance(node, bool) and kind is not bool:
        raise ModelError(f"OCR sidecar field {path!r} has the wrong type: {node!r}")
    return node


def crop_variants(crop: np.ndarray) -> list[np.ndarray]:
    """The crop as cut, padded by 4 % of its width and 6 % of its height on each side (edge pixels
    repeated), and trimmed by 2 % and 3 %: a detector box is never exact, and a read that changes
    with the cut is the one to doubt."""
    h, w = crop.shape[:2]
    if h == 0 or w == 0:
        return [crop]
    px, py = max(1, round(0.04 * w)), max(1, round(0.06 * h))
    out = [crop, cv2.copyMakeBorder(crop, py, py, px, px, cv2.BORDER_REPLICATE)]
    tx, ty = int(0.02 * w), int(0.03 * h)
    if tx and ty:
        out.append(crop[ty : h - ty, tx : w - tx])
    return out


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
        return self._session.run([self._output_name], {self._input_name: batch})[0]

    def read(self, crops: Sequence[np.ndarray], region: str | None = None) -> list[OcrResult]:
        """Read every crop (BGR, any size) in one session run; results in crop order. On a two-row read,
        a 0 among the letters of the top line becomes O (`settle_top_line`; not for region us); a final I or O
        after two digits, or an O between digits, becomes 1 or 0 (`settle_digit_run`). With a `region`
        (`picar.vision.formats.REGIONS`), each read is fitted to its plate formats: the most probable
        fitting reading of the model's frames (`fit_region`), or for a slot model the re-ranked
        candidates (`apply_region`)."""
        if len(crops) == 0:
            return []
        probs = self.probabilities(preprocess(crops, self._height, self._width, self._channels))
        results = decode(probs, self.alphabet, self.pad, self.top_k, self.max_candidates, self.decoder)
        if self.frames_per_row and (region is None or region.lower() not in ZERO_REGIONS):
            results = [settle_top_line(r, p, self.frames_per_row) for r, p in zip(results, probs, strict=True)]
        results = [settle_digit_run(r) for r in results]
        if region is None:
            return results
        if self.decoder == "ctc":
            return [fit_region(r, p, region, self.alphabet, self.frames_per_row)
                    for r, p in zip(results, probs, strict=True)]
        return [apply_region(r, region) for r in results]

    def read_voted(self, crops: Sequence[np.ndarray], region: str | None = None) -> list[OcrResult]:
        """Read each crop as cut, a little looser and a little tighter (`crop_variants`), in one
        session run, and vote one read per crop (`picar.vision.votes.vote_reads`). For still photos, which
        have no second frame to vote with: three times the OCR work for fewer misreads. With a
        `region`, each cut's read is fitted first (as in `read`) and whole texts are voted
        (`vote_texts`): a character-by-character mix of two valid plates need not be one."""
        if len(crops) == 0:
            return []
        groups = [crop_variants(c) for c in crops]
        reads = self.read([v for g in groups for v in g], region)
        vote = vote_reads if region is None else vote_texts
        out, i = [], 0
        for g in groups:
            out.append(vote(reads[i : i + len(g)], self.max_candidates))
            i += len(g)
        return out

    def is_confident(self, result: OcrResult) -> bool:
        """Whether a read passes the sidecar's plate and per-character confidence thresholds."""
        return (bool(result.text) and result.confidence >= self.min_plate_confidence
                and all(c.confidence >= self.min_char_confidence for c in result.chars))

    def warm_up(self) -> None:
        """Run the model on blank input at batch 1 and 4, so the first real plate is not slow."""
        for n in (1, 4):
            blank = np.zeros((n, self._height, self._width, self._channels), np.uint8)
            warm_up(self._session, {self._input_name: blank}, runs=2)
