"""New real-looking plates from old ones: the letters of one real one-row crop (`LLL NNNN`, as on
Brazil's old plates and many US ones) joined to the digits of another.

The real Brazilian and European two-row train sets hold a few hundred distinct plates each, and the
model reads those almost perfectly (Brazil train 0.978) while it misreads about one val plate in ten:
it learns the plates, not only the characters. Splicing makes many new combinations out of real pixels,
camera and font. Where to cut comes from a trained reader's CTC frames: the quietest column between
the last letter's frame and the first digit's, kept only where that reader reads the crop exactly.
Two-row plates are not spliced: their lines differ in size and place from plate to plate, and cuts
between them (tried) left pieces of one plate's top line over another's bottom line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from picar.vision.ctc_grammar import greedy_path
from picar.vision.ocr import PlateOcr, preprocess

if TYPE_CHECKING:  # ocr_data needs torch; this module does not, so tests run it without
    from picar.train.ocr_data import RealCrop

ONE_ROW = re.compile(r"^([A-Z]{2,4})([0-9]{3,5})$")
# Parts narrower than this many input pixels are not spliced: the reader's frames are 4 px apart
MIN_PART_PX = 12


@dataclass(frozen=True)
class SpliceCrop:
    """A real crop at the network's input size and where its text splits in two."""

    dataset: str
    image: np.ndarray  # gray, at the reader's input size
    text: str
    cut: int  # text[:cut] is the first part
    at: int  # input column where the second part begins


def _quietest(gray: np.ndarray, lo: float, hi: float) -> int:
    """The first column after `lo` (and before `hi`) that crosses almost no strokes: the spread of
    its middle rows (where the characters are; a header or frame is above or below), smoothed over 3
    columns, within 15 % of the window's range of its least. Between the last letter's CTC frame and
    the first digit's that is the gap right after the letters, so a dash or dot between the groups
    always goes with the digits and a splice never holds two of them."""
    h = gray.shape[0]
    energy = gray[h // 4: h - h // 5].astype(np.float32).std(axis=0)
    energy = np.convolve(energy, np.ones(3, np.float32) / 3, mode="same")
    a, b = int(np.floor(min(lo, hi))), int(np.ceil(max(lo, hi))) + 1
    a, b = max(a, 0), min(b, len(energy))
    if b - a < 2:
        return int(round((lo + hi) / 2))
    window = energy[a:b]
    quiet = window <= window.min() + 0.15 * (window.max() - window.min())
    return a + int(np.argmax(quiet))


def find_splice_points(model_path: Path, crops: Sequence[RealCrop], batch: int = 64) -> list[SpliceCrop]:
    """Every crop that the reader at `model_path` reads exactly as a one-row letters-then-digits
    plate, with its cut. Others are left out."""
    ocr = PlateOcr(Path(model_path), threads=1)
    per_row = ocr.frames_per_row
    if ocr.decoder != "ctc" or not per_row:
        raise ValueError(f"{model_path}: splice points need a CTC reader with frame rows")
    height, width, _ = ocr.input_shape
    col_px = width / per_row
    out: list[SpliceCrop] = []
    for i in range(0, len(crops), batch):
        part = list(crops[i: i + batch])
        images = preprocess([c.image for c in part], height, width, 1)
        probs = ocr.probabilities(images)
        for crop, img, p in zip(part, images, probs, strict=True):
            path = greedy_path(p)
            text = "".join(ocr.alphabet[k] for _, k in path)
            if text != crop.text:
                continue
            m = ONE_ROW.match(text)
            if m is None or len({f // per_row for f, _ in path}) != 1:
                continue
            cut = len(m.group(1))
            cols = [f % per_row for f, _ in path]
            at = _quietest(img[:, :, 0], (cols[cut - 1] + 0.5) * col_px, (cols[cut] + 0.5) * col_px)
            if MIN_PART_PX <= at <= width - MIN_PART_PX:
                out.append(SpliceCrop(crop.dataset, img[:, :, 0].copy(), text, cut, at))
    return out


def _match_tone(part: np.ndarray, mean: float, std: float) -> np.ndarray:
    f = part.astype(np.float32)
    f = (f - f.mean()) / max(float(f.std()), 1.0) * std + mean
    return np.clip(f, 0, 255)


def splice(a: SpliceCrop, b: SpliceCrop, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The letters of `a` joined to the digits of `b`, toned to match and resized back to the input
    size; the text is a's letters and b's digits. The seam moves by a pixel either way."""
    shift = int(rng.integers(-1, 2))
    first, second = a.image[:, : a.at + shift], b.image[:, b.at + shift:]
    mean = float((a.image.mean() + b.image.mean()) / 2)
    std = float((a.image.std() + b.image.std()) / 2)
    joined = np.concatenate([_match_tone(first, mean, std), _match_tone(second, mean, std)], axis=1)
    img = cv2.resize(joined, (a.image.shape[1], a.image.shape[0]), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0, 255).astype(np.uint8), a.text[: a.cut] + b.text[b.cut:]


class Splicer:
    """Draws spliced plates per real set: letters and digits from two crops of the same set. `share`
    is the part of real draws that a training set replaces by a splice."""

    def __init__(self, points: Sequence[SpliceCrop], share: float = 1.0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"splice share is a part of real draws in 0..1, got {share}")
        self.share = share
        self.by_set: dict[str, list[SpliceCrop]] = {}
        for p in points:
            self.by_set.setdefault(p.dataset, []).append(p)

    def __call__(self, dataset: str, rng: np.random.Generator) -> tuple[np.ndarray, str] | None:
        """A spliced input and its text, or None when `dataset` has fewer than two splittable crops."""
        pool = self.by_set.get(dataset, [])
        if len(pool) < 2:
            return None
        i, j = rng.choice(len(pool), size=2, replace=False)
        return splice(pool[int(i)], pool[int(j)], rng)
