"""Training data for the plate OCR: real crops from ../shared/data/ocr and synthetic plates, both passed
through the same augmentation that imitates a detector's loose or tight box on a real camera frame."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from picar.train import real_crops
from picar.train.ocr_model import INPUT_HEIGHT, INPUT_WIDTH, MAX_SLOTS, PAD, VOCAB
from picar.train.plates import PLATE_FONTS, STYLES, degrade, render_plate
from picar.train.real_crops import OI_CROPS, RealCrop

if TYPE_CHECKING:  # splice imports this module's RealCrop for its types
    from picar.train.splice import Splicer

TRAIN_WEIGHTS = {
    "us_openalpr_seg_and_ocr": 0.30,
    "br_openalpr_train_detector": 0.22,
    "eu_openalpr_train_detector_eu2": 0.18,
    "ro_dashcam_crops": 0.10,
    # session 9: European one-row crops, Ukrainian photos, plates cut from the Open Images boxes
    "eu_openalpr_train_detector_eu1": 0.22,
    "ua_nomeroff_examples": 0.02,
    OI_CROPS: 0.16,
}
# Synthetic style mix: the benchmark is US / EU / BR, the fleet drives in Moldova / Romania.
STYLE_WEIGHTS = {
    "md": 0.01, "md_series": 0.1, "tn_series": 0.03, "ro_series": 0.04, "ua_series": 0.04, "ro": 0.05,
    "ro_temp": 0.03, "ua": 0.05, "pl": 0.05, "de": 0.06, "eu": 0.1,
    "eu_square": 0.12, "moto": 0.04, "us": 0.12, "us_frame": 0.08, "br_old": 0.06, "br_old_red": 0.04,
    "br_mercosur": 0.06, "ar_mercosur": 0.04, "ar_old": 0.03,
}
assert set(STYLE_WEIGHTS) == set(STYLES)


def load_real(data_root: Path, dataset: str, split: str, color: bool = False) -> list[RealCrop]:
    """Rows of `dataset` in `split` ("train" or "val"), at most MAX_SLOTS characters (real_crops.load_real)."""
    return real_crops.load_real(data_root, dataset, split, color=color, max_chars=MAX_SLOTS)


def encode_text(text: str, slots: int = MAX_SLOTS) -> np.ndarray:
    """Left-aligned class indices, padded with the pad class."""
    if len(text) > slots:
        raise ValueError(f"text {text!r} longer than {slots} slots")
    idx = [VOCAB.index(c) for c in text] + [VOCAB.index(PAD)] * (slots - len(text))
    return np.array(idx, np.int64)


# --------------------------------------------------------------------------- augmentation


def _random_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Car paint, bumper plastic, chrome or shadow around the plate, in BGR."""
    base = rng.integers(0, 256, 3).astype(np.float32)
    if rng.random() < 0.4:
        base[:] = rng.integers(0, 256)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * rng.uniform(-60, 60)
    img += gy
    if rng.random() < 0.5:  # bumper edges / grille bars
        for _ in range(int(rng.integers(1, 5))):
            y = int(rng.integers(0, h))
            cv2.line(img, (0, y), (w, y + int(rng.integers(-5, 6))), tuple(float(v) for v in rng.integers(0, 256, 3)),
                     int(rng.integers(1, max(2, h // 10))))
    img += rng.normal(0, rng.uniform(2, 12), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def synth_sample(rng: np.random.Generator, fonts: Sequence[str] = PLATE_FONTS,
                 styles: Sequence[str] | None = None, badges: float = 0.0,
                 ) -> tuple[np.ndarray, tuple[float, float, float, float], str]:
    """A rendered, damaged plate on a random surround: (gray image, plate box x,y,w,h, text).
    `styles` narrows the STYLE_WEIGHTS mix to those styles; `badges` goes to `render_plate`."""
    mix = {k: v for k, v in STYLE_WEIGHTS.items() if styles is None or k in styles}
    if not mix:
        raise ValueError(f"no known style in {list(styles or [])}; known: {', '.join(STYLE_WEIGHTS)}")
    style = str(rng.choice(list(mix), p=np.array(list(mix.values())) / sum(mix.values())))
    plate = render_plate(rng, style, fonts=fonts, badges=badges)
    img = plate.image
    ph, pw = img.shape[:2]
    scale = rng.uniform(60, 220) / pw  # plate width in the camera frame, before the OCR resize
    pw2, ph2 = max(24, int(pw * scale)), max(10, int(ph * scale))
    img = cv2.resize(img, (pw2, ph2), interpolation=cv2.INTER_AREA)
    mx, my = int(pw2 * 0.3) + 2, int(ph2 * 0.5) + 2
    canvas = _random_background(rng, ph2 + 2 * my, pw2 + 2 * mx)
    canvas[my: my + ph2, mx: mx + pw2] = img
    if rng.random() < 0.9:  # past about 0.9 the damage often makes the text illegible: label noise
        canvas = degrade(canvas, rng, float(rng.uniform(0.1, 0.9)))
    gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
    return gray, (float(mx), float(my), float(pw2), float(ph2)), plate.text


def crop_warp(gray: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator,
              loose: float = 1.0) -> np.ndarray:
    """Cut `box` out as a detector would (each side a bit loose or tight), with slight rotation and
    perspective, straight to the network's input size in one warp."""
    x, y, w, h = box
    # Tight by at most 2-4%: a tighter box cuts off edge characters that the label still holds.
    left = x - w * rng.uniform(-0.02, 0.12) * loose
    right = x + w + w * rng.uniform(-0.02, 0.12) * loose
    top = y - h * rng.uniform(-0.04, 0.2) * loose
    bottom = y + h + h * rng.uniform(-0.04, 0.2) * loose
    quad = np.float32([[left, top], [right, top], [right, bottom], [left, bottom]])
    quad += rng.normal(0, 0.02, (4, 2)).astype(np.float32) * np.float32([w, h]) * loose
    angle = np.deg2rad(rng.normal(0, 3.0) * loose)
    c = quad.mean(axis=0)
    rot = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = (quad - c) @ rot.T + c
    # Shrink big sources first with area averaging, as the runtime's resize does, so that the warp
    # never aliases: the network must see what `preprocess` gives it.
    src_w = float(np.linalg.norm(quad[1] - quad[0]))
    shrink = min(1.0, 2.0 * INPUT_WIDTH / max(src_w, 1.0), 2.0 * INPUT_HEIGHT / max(bottom - top, 1.0))
    if shrink < 0.95:
        gray = cv2.resize(gray, (max(1, int(gray.shape[1] * shrink)), max(1, int(gray.shape[0] * shrink))),
                          interpolation=cv2.INTER_AREA)
        quad *= shrink
    dst = np.float32([[0, 0], [INPUT_WIDTH, 0], [INPUT_WIDTH, INPUT_HEIGHT], [0, INPUT_HEIGHT]])
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    border = cv2.BORDER_REPLICATE if rng.random() < 0.7 else cv2.BORDER_CONSTANT
    return cv2.warpPerspective(gray, m, (INPUT_WIDTH, INPUT_HEIGHT), flags=cv2.INTER_LINEAR, borderMode=border,
                               borderValue=int(rng.integers(0, 256)))


def poor_camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The look of the real misses on Brazilian val: a washed-out, low-contrast plate (an IR or
    green-cast exposure turned grey), defocused, with sensor noise. Strokes stay legible."""
    f = img.astype(np.float32)
    mean = float(f.mean())
    f = (f - mean) * rng.uniform(0.28, 0.55) + mean + rng.uniform(-50, 50)
    out = cv2.GaussianBlur(np.clip(f, 0, 255).astype(np.uint8), (0, 0), float(rng.uniform(1.0, 2.2)))
    noisy = out.astype(np.float32) + rng.normal(0, rng.uniform(1.5, 6), out.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def tilt(img: np.ndarray, rng: np.random.Generator, max_deg: float = 12.0) -> np.ndarray:
    """A plate photographed at an angle, as a detector boxes it: the input unstretched to a plate's
    true shape (one-row plates are 2 to 4.7 times as wide as tall; the input makes them 2:1), rotated
    4-`max_deg` degrees, boxed axis-aligned around the whole rotated plate, and stretched back. In the
    stretched input a 10 degree tilt of a long plate becomes a slope of about 20 degrees, far beyond the
    small rotations of `crop_warp`; car photos are full of such plates."""
    h, w = img.shape
    true_w = max(w, int(round(h * rng.uniform(2.0, 4.7))))
    wide = cv2.resize(img, (true_w, h), interpolation=cv2.INTER_LINEAR)
    angle = float(rng.uniform(4.0, max_deg) * rng.choice([-1.0, 1.0]))
    a = np.deg2rad(angle)
    box_w = true_w * abs(np.cos(a)) + h * abs(np.sin(a))
    box_h = true_w * abs(np.sin(a)) + h * abs(np.cos(a))
    m = cv2.getRotationMatrix2D((true_w / 2, h / 2), angle, 1.0)
    m[0, 2] += (box_w - true_w) / 2
    m[1, 2] += (box_h - h) / 2
    border = cv2.BORDER_REPLICATE if rng.random() < 0.6 else cv2.BORDER_CONSTANT
    turned = cv2.warpAffine(wide, m, (int(np.ceil(box_w)), int(np.ceil(box_h))), flags=cv2.INTER_LINEAR,
                            borderMode=border, borderValue=int(rng.integers(0, 256)))
    return cv2.resize(turned, (w, h), interpolation=cv2.INTER_AREA)


def photometric(img: np.ndarray, rng: np.random.Generator, poor: float = 0.0) -> np.ndarray:
    """Cheap camera effects at input resolution: contrast, gamma, polarity, blur, noise, JPEG; with
    probability `poor`, the washed-out, defocused look of `poor_camera` instead of contrast and blur."""
    if poor > 0 and rng.random() < poor:  # no draw at 0: earlier recipes replay unchanged
        return poor_camera(img, rng)
    f = img.astype(np.float32)
    if rng.random() < 0.8:
        f = (f - f.mean()) * rng.uniform(0.5, 1.4) + f.mean() + rng.uniform(-40, 40)
    if rng.random() < 0.3:
        f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.07:  # light characters on a dark plate, or an inverted IR exposure
        f = 255.0 - f
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.3)))
    if rng.random() < 0.2:
        s = rng.uniform(0.35, 0.8)
        small = cv2.resize(out, (max(8, int(INPUT_WIDTH * s)), max(4, int(INPUT_HEIGHT * s))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        out = np.clip(out.astype(np.float32) + rng.normal(0, rng.uniform(2, 10), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


# --------------------------------------------------------------------------- dataset


def _seed(*parts: int) -> int:
    h = hashlib.blake2b(np.array(parts, np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(h, "little")


def synth_input(rng: np.random.Generator, fonts: Sequence[str] = PLATE_FONTS,
                styles: Sequence[str] | None = None, badges: float = 0.0) -> tuple[np.ndarray, str]:
    """One synthetic network input (INPUT_HEIGHT x INPUT_WIDTH gray) and its text."""
    for _ in range(4):  # re-draw washed-out or black renders: their labels would be noise
        gray, box, text = synth_sample(rng, fonts, styles, badges)
        img = photometric(crop_warp(gray, box, rng), rng)
        if img.std() >= 12:
            break
    return img, text


def jitter(img: np.ndarray, rng: np.random.Generator, poor: float = 0.0) -> np.ndarray:
    """A cheap re-augmentation of a cached input: small shift, scale and rotation, brightness, noise;
    with probability `poor`, then the look of `poor_camera`."""
    h, w = img.shape
    s = rng.uniform(0.93, 1.02)  # zooming in further would cut off edge characters
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-3, 3), h / 2 + rng.uniform(-2, 2)), rng.normal(0, 1.5), s)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    f = out.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-25, 25)
    if rng.random() < 0.3:
        f += rng.normal(0, rng.uniform(2, 8), f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    return poor_camera(out, rng) if poor > 0 and rng.random() < poor else out


@dataclass(frozen=True)
class SynthPool:
    """Pre-rendered synthetic inputs (`picar.train.ocr_cache`): images (N, H, W) uint8, labels (N, slots)."""

    images: np.ndarray
    labels: np.ndarray

    @classmethod
    def load(cls, *folders: Path) -> SynthPool:
        shards = [p for folder in folders for p in sorted(Path(folder).glob("synth_*.npz"))]
        if not shards:
            raise FileNotFoundError(f"no synth_*.npz shards in {', '.join(map(str, folders))}: "
                                    "run python -m picar.train.ocr_cache first")
        parts = [np.load(p) for p in shards]
        return cls(np.concatenate([p["images"] for p in parts]), np.concatenate([p["labels"] for p in parts]))


class MixedPlates(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One epoch of `size` samples: a `real_share` of augmented real crops (weighted per dataset),
    the rest synthetic (rendered now, or drawn from a pre-rendered pool and jittered). Sample i of epoch e
    is a pure function of (seed, e, i): resumable, repeatable."""

    def __init__(self, real: Sequence[RealCrop], size: int, real_share: float, seed: int, epoch: int,
                 pool: SynthPool | None = None, poor: float = 0.0,
                 weights: dict[str, float] | None = None, tilted: float = 0.0, splicer: Splicer | None = None) -> None:
        self.pool = pool
        self.splicer = splicer
        self.poor = poor
        self.tilted = tilted
        self.size = size
        self.real_share = real_share
        self.seed = seed
        self.epoch = epoch
        by_set: dict[str, list[RealCrop]] = {}
        for crop in real:
            by_set.setdefault(crop.dataset, []).append(crop)
        weights = {**TRAIN_WEIGHTS, **(weights or {})}
        self.sets = [(name, by_set[name]) for name in weights if name in by_set and weights[name] > 0]
        w = np.array([weights[name] for name, _ in self.sets], np.float64)
        self.set_p = w / w.sum() if len(w) else w

    def __len__(self) -> int:
        return self.size

    def _maybe_tilt(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.tilted > 0 and rng.random() < self.tilted:  # no draw at 0: earlier recipes replay
            return tilt(img, rng)
        return img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(_seed(self.seed, self.epoch, i))
        if self.sets and rng.random() < self.real_share:
            name, crops = self.sets[int(rng.choice(len(self.sets), p=self.set_p))]
            spliced = None
            if self.splicer is not None and rng.random() < self.splicer.share:  # no draw without one
                spliced = self.splicer(name, rng)
            if spliced is not None:
                img, text = spliced
                img = jitter(img, rng)
            else:
                crop = crops[int(rng.integers(len(crops)))]
                h, w = crop.image.shape[:2]
                if crop.box is not None:  # a plate in its photo: cut as a detector would, looser or tighter
                    img = crop_warp(crop.image, crop.box, rng, loose=1.3)
                else:  # real crops are already cut around the plate: the box is the whole crop
                    img = crop_warp(crop.image, (0.0, 0.0, float(w), float(h)), rng, loose=0.6)
                text = crop.text
            img = self._maybe_tilt(img, rng)
            img = photometric(img, rng, self.poor)
        elif self.pool is not None:
            k = int(rng.integers(len(self.pool.images)))
            img = jitter(self.pool.images[k], rng, self.poor) if rng.random() < 0.7 else self.pool.images[k]
            img = self._maybe_tilt(img, rng)
            return torch.from_numpy(np.ascontiguousarray(img)[None]), torch.from_numpy(self.pool.labels[k].copy())
        else:
            img, text = synth_input(rng)
        return torch.from_numpy(img[None]), torch.from_numpy(encode_text(text))
