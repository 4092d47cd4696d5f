"""Plate-detection training data: the real YOLO folders, crops with scale jitter, and stride-4 targets.

Real folders follow ../shared/data/detect/<source>/{images,labels}[/index.csv]. Splits: the
`suggested_split` column where index.csv exists (`drop_exact_duplicate` rows are skipped); otherwise a
deterministic split by SHA-1 of the file stem (1 in 5 to val). mixed_openlpr_faisalthaheem is training
only (watermarked third-party photos), whatever its index says.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from picar.tools.eval_data import hash_split

TRAIN_ONLY = {"mixed_openlpr_faisalthaheem"}
RO_SOURCE = "ro_robertlucian_dashcam"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class DetSample:
    """One real image: path, plate boxes as float (x1, y1, x2, y2) normalised to 0..1, source, split."""

    path: Path
    boxes: np.ndarray  # (N, 4) float32, normalised x1 y1 x2 y2
    source: str
    split: str


def read_yolo_labels(path: Path) -> np.ndarray:
    """`0 cx cy w h` lines (normalised) -> (N, 4) normalised x1 y1 x2 y2. Errors name file and line."""
    rows: list[list[float]] = []
    if not path.exists():
        return np.zeros((0, 4), np.float32)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise ValueError(f"{path}:{n}: expected 'class cx cy w h', got {line!r}")
        try:
            cls = int(float(parts[0]))
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: not numbers: {line!r}") from exc
        if cls != 0:
            raise ValueError(f"{path}:{n}: class {cls} is not 0 (plate)")
        if w <= 0 or h <= 0:
            continue
        rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.asarray(rows, np.float32).reshape(-1, 4)


def _find_image(images: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        p = images / f"{stem}{suffix}"
        if p.exists():
            return p
    return None


def load_folder(folder: Path) -> list[DetSample]:
    """All labelled images of one detect/<source> folder with their split."""
    source = folder.name
    images, labels = folder / "images", folder / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise FileNotFoundError(f"{folder}: expected images/ and labels/ folders")
    splits: dict[str, str] = {}
    index = folder / "index.csv"
    if index.exists():
        with index.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "file" not in reader.fieldnames:
                raise ValueError(f"{index}: needs a 'file' column")
            for row in reader:
                splits[Path(row["file"]).stem] = row.get("suggested_split") or "train"
    out: list[DetSample] = []
    for img in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        stem = img.stem
        split = splits.get(stem, hash_split(stem)) if splits else hash_split(stem)
        if split not in ("train", "val"):
            continue
        if source in TRAIN_ONLY:
            split = "train"
        out.append(DetSample(img, read_yolo_labels(labels / f"{stem}.txt"), source, split))
    return out


def load_detect_root(data_root: Path) -> list[DetSample]:
    """Every detect/<source> folder under a ../shared/data style root."""
    root = data_root / "detect"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found (expected <data>/detect/<source>/images,labels)")
    samples: list[DetSample] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        samples.extend(load_folder(folder))
    return samples


# ---------------------------------------------------------------- augmentation


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast, colour cast, night, blur (gaussian or motion), noise; in place-ish."""
    x: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.8:
        x = x * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)
    if rng.random() < 0.3:
        x = x * rng.uniform(0.75, 1.25, size=3).astype(np.float32)  # colour cast (dashcam magenta etc.)
    if rng.random() < 0.1:
        g = x.mean(axis=2, keepdims=True)
        x = np.repeat(g, 3, axis=2)
    if rng.random() < 0.2:  # night: dark, crushed, gamma
        x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(1.3, 2.2) * rng.uniform(0.5, 1.0)
    x = np.clip(x, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.15:
        k = int(rng.integers(1, 3)) * 2 + 1
        x = cv2.GaussianBlur(x, (k, k), 0)
    elif r < 0.3:
        length = int(rng.integers(3, 10))
        kernel: np.ndarray = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(-30, 30)), 1.0)
        kernel = cv2.warpAffine(kernel, m, (length, length))
        kernel = kernel / max(float(kernel.sum()), 1e-6)
        x = cv2.filter2D(x, -1, kernel)
    if rng.random() < 0.25:
        noise = rng.normal(0, rng.uniform(3, 12), size=x.shape).astype(np.float32)
        x = np.clip(x.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        q = int(rng.integers(30, 80))
        ok, enc = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, q])
        dec = cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else None
        if dec is not None:
            x = dec
    return x


def reference_scale(width: int, height: int, input_hw: tuple[int, int]) -> float:
    """The letterbox scale the deployed model applies to a frame of this size."""
    return min(input_hw[1] / width, input_hw[0] / height)


def random_crop(
    image: np.ndarray,
    boxes_px: np.ndarray,
    rng: np.random.Generator,
    crop: int,
    input_hw: tuple[int, int],
    decode_factor: float = 1.0,
    max_plate_px: float = 220.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A crop x crop training view: scale jitter (deployment scale or a target plate width), a crop
    centred on a plate most of the time, horizontal flip. `boxes_px` are x1y1x2y2 in `image` pixels;
    `decode_factor` is how much `image` was already shrunk when decoded (for the deployment scale).
    Returns (crop image, boxes in crop pixels)."""
    h, w = image.shape[:2]
    ref = reference_scale(round(w / decode_factor), round(h / decode_factor), input_hw) / decode_factor
    widths = boxes_px[:, 2] - boxes_px[:, 0] if len(boxes_px) else np.zeros(0)
    if len(boxes_px) and rng.random() < 0.5:
        k = int(rng.integers(len(boxes_px)))
        target_w = float(np.exp(rng.uniform(np.log(8.0), np.log(max_plate_px))))
        s = target_w / max(float(widths[k]), 1.0)
        s = float(np.clip(s, ref * 0.3, ref * 4.0))
    else:
        s = ref * float(np.exp(rng.uniform(np.log(0.6), np.log(1.8))))
    sw, sh = w * s, h * s
    if len(boxes_px) and rng.random() < 0.85:
        k = int(rng.integers(len(boxes_px)))
        cx = (boxes_px[k, 0] + boxes_px[k, 2]) / 2 * s
        cy = (boxes_px[k, 1] + boxes_px[k, 3]) / 2 * s
        ox = cx - rng.uniform(0.1, 0.9) * crop
        oy = cy - rng.uniform(0.1, 0.9) * crop
    else:
        ox = rng.uniform(min(0.0, sw - crop), max(0.0, sw - crop))
        oy = rng.uniform(min(0.0, sh - crop), max(0.0, sh - crop))
    m = np.array([[s, 0, -ox], [0, s, -oy]], np.float32)
    fill = int(rng.integers(0, 256)) if rng.random() < 0.5 else 114
    out = cv2.warpAffine(image, m, (crop, crop), flags=cv2.INTER_LINEAR, borderValue=(fill, fill, fill))
    b = boxes_px.astype(np.float32) * s
    b[:, 0::2] -= ox
    b[:, 1::2] -= oy
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
        b = np.stack([crop - b[:, 2], b[:, 1], crop - b[:, 0], b[:, 3]], axis=1) if len(b) else b
    return out, b.reshape(-1, 4)


# ---------------------------------------------------------------- targets


def build_targets(
    boxes: np.ndarray, height: int, width: int, stride: int, min_px: float = 5.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x1y1x2y2, input px) -> heat (h,w), box target (4,h,w), box weight (h,w), ignore (h,w).

    Heat is an elliptical Gaussian per plate (sigma proportional to the box sides, TTFNet style) with
    exactly 1.0 at the centre cell. Box regression is trained at every cell where that plate's Gaussian
    is the largest and above 0.1, weighted by it and normalised per plate. Boxes mostly outside the view
    or narrower than `min_px` are not targets but are ignored (no negative loss) around their area.
    """
    oh, ow = height // stride, width // stride
    heat = np.zeros((oh, ow), np.float32)
    box_t = np.zeros((4, oh, ow), np.float32)
    weight = np.zeros((oh, ow), np.float32)
    ignore = np.zeros((oh, ow), bool)
    ys = (np.arange(oh, dtype=np.float32) + 0.5) * stride
    xs = (np.arange(ow, dtype=np.float32) + 0.5) * stride
    for x1, y1, x2, y2 in boxes:
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        visible = max(cx2 - cx1, 0) * max(cy2 - cy1, 0) / (bw * bh)
        ix1, iy1 = int(max(cx1 // stride, 0)), int(max(cy1 // stride, 0))
        ix2, iy2 = int(min(np.ceil(cx2 / stride), ow)), int(min(np.ceil(cy2 / stride), oh))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if visible < 0.6 or bw < min_px or not (0 <= cx < width and 0 <= cy < height):
            if ix2 > ix1 and iy2 > iy1:
                ignore[iy1:iy2, ix1:ix2] = True
            continue
        sx = max(0.54 * bw / 6.0 / stride, 0.4)
        sy = max(0.54 * bh / 6.0 / stride, 0.4)
        gx = np.exp(-((xs - cx) ** 2) / (2 * (sx * stride) ** 2))
        gy = np.exp(-((ys - cy) ** 2) / (2 * (sy * stride) ** 2))
        g = gy[:, None] * gx[None, :]
        pcx, pcy = min(int(cx // stride), ow - 1), min(int(cy // stride), oh - 1)
        g[pcy, pcx] = 1.0
        mine = (g > heat) & (g > 0.1)
        np.maximum(heat, g, out=heat)
        wsum = float(g[mine].sum())
        if wsum > 0:
            weight[mine] = g[mine] / wsum
            box_t[0][mine], box_t[1][mine], box_t[2][mine], box_t[3][mine] = x1, y1, x2, y2
    ignore &= heat < 0.1
    return heat, box_t, weight, ignore


# ---------------------------------------------------------------- batches


SyntheticFn = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


class CropSampler:
    """Draws training crops: real images (decoded per draw) mixed with synthetic scenes when given."""

    def __init__(
        self,
        samples: list[DetSample],
        input_hw: tuple[int, int],
        crop: int = 256,
        synthetic: SyntheticFn | None = None,
        synthetic_fraction: float = 0.3,
        source_weights: dict[str, float] | None = None,
        max_plate_px: float = 220.0,
    ) -> None:
        if not samples:
            raise ValueError("no training samples")
        self.samples = samples
        self.input_hw = input_hw
        self.crop = crop
        self.synthetic = synthetic
        self.synthetic_fraction = synthetic_fraction
        self.max_plate_px = max_plate_px
        weights = np.array([(source_weights or {}).get(s.source, 1.0) for s in samples], np.float64)
        self.p = weights / weights.sum()

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One augmented crop and its boxes (crop pixels)."""
        if self.synthetic is not None and rng.random() < self.synthetic_fraction:
            image, boxes = self.synthetic(rng)
            factor = 1.0
        else:
            s = self.samples[int(rng.choice(len(self.samples), p=self.p))]
            image, factor = read_image(s.path, reduce=rng.random() < 0.5)
            h, w = image.shape[:2]
            boxes = s.boxes * np.array([w, h, w, h], np.float32)
        crop, b = random_crop(image, boxes, rng, self.crop, self.input_hw, factor, self.max_plate_px)
        return photometric(crop, rng), b

    def batch(
        self, rng: np.random.Generator, size: int, stride: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(images N,H,W,3 uint8, heat N,1,h,w, box targets N,4,h,w, weight N,h,w, ignore N,h,w)."""
        imgs, heats, boxes, weights, ignores = [], [], [], [], []
        for _ in range(size):
            img, b = self.draw(rng)
            heat, bt, wt, ig = build_targets(b, self.crop, self.crop, stride)
            imgs.append(img)
            heats.append(heat[None])
            boxes.append(bt)
            weights.append(wt)
            ignores.append(ig)
        return np.stack(imgs), np.stack(heats), np.stack(boxes), np.stack(weights), np.stack(ignores)


def read_image(path: Path, reduce: bool = False) -> tuple[np.ndarray, float]:
    """Decode a BGR image, at half size when `reduce` and the image is large; (image, shrink factor)."""
    data = np.fromfile(path, np.uint8)
    if reduce:
        img = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_2)
        if img is not None and min(img.shape[:2]) >= 240:
            return img, 0.5
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    return img, 1.0
