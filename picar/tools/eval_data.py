"""The labelled folders `picar eval` scores: YOLO box labels, OCR crop texts, the hash split, images read
as BGR with a clear error naming the file.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class EvalError(ValueError):
    """Bad evaluation input: the message names the file, line or value."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    boxes: np.ndarray  # (N, 4) normalised x1 y1 x2 y2, label-file order


def read_yolo(path: Path) -> np.ndarray:
    """YOLO `0 cx cy w h` lines -> (N, 4) normalised x1y1x2y2, one row per non-empty line, in order."""
    rows: list[list[float]] = []
    if not path.exists():
        return np.zeros((0, 4), np.float64)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise EvalError(f"{path}:{n}: expected 'class cx cy w h', got {line!r}")
        try:
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except ValueError as exc:
            raise EvalError(f"{path}:{n}: expected 'class cx cy w h' numbers, got {line!r}") from exc
        rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.asarray(rows, np.float64).reshape(-1, 4)


def hash_split(stem: str, val_every: int = 5) -> str:
    """Deterministic split for folders without index.csv: SHA-1 of the stem, 1 in `val_every` to val.
    The detector training uses this same rule, so `--split val` never scores training images."""
    digest = int(hashlib.sha1(stem.encode()).hexdigest()[:8], 16)
    return "val" if digest % val_every == 0 else "train"


def load_detect_folder(folder: Path, split: str) -> tuple[list[LabelledImage], str]:
    """Labelled images of one folder in `split` ('all' for every image); (images, how the split was made)."""
    images_dir, labels_dir = folder / "images", folder / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise EvalError(f"{folder}: expected images/ and labels/ folders")
    splits: dict[str, str] | None = None
    index = folder / "index.csv"
    if index.exists():
        with index.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames and "suggested_split" in reader.fieldnames and "file" in reader.fieldnames:
                splits = {Path(r["file"]).stem: r["suggested_split"] for r in reader}
    if split == "all":
        how = "all images"
    elif splits is not None:
        how = f"index.csv suggested_split == {split}"
    else:
        how = f"no index.csv: SHA-1 of file stem, 1 in 5 to val (split == {split})"
    out: list[LabelledImage] = []
    for img in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if split != "all":
            s = splits.get(img.stem, "") if splits is not None else hash_split(img.stem)
            if s != split:
                continue
        out.append(LabelledImage(img, read_yolo(labels_dir / f"{img.stem}.txt")))
    return out, how


def detect_folders(root: Path) -> list[Path]:
    """`root` itself if it is a detect folder, else its (or its detect/) sub-folders that are."""
    if (root / "images").is_dir():
        return [root]
    base = root / "detect" if (root / "detect").is_dir() else root
    found = sorted(p for p in base.iterdir() if p.is_dir() and (p / "images").is_dir()) if base.is_dir() else []
    if not found:
        raise EvalError(f"{root}: no images/ + labels/ folder found (nor in its sub-folders)")
    return found


def load_texts(path: Path, split: str = "all") -> dict[tuple[str, int], str]:
    """CSV with source_image (or image), box_index, text[, suggested_split] -> {(image stem, box index): text};
    with a `split` other than "all", only the rows of that suggested_split (the file must have the column)."""
    if not path.is_file():
        raise EvalError(f"--texts {path}: file not found")
    out: dict[tuple[str, int], str] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        image = "source_image" if "source_image" in fields else "image"
        need = {image, "box_index", "text"}
        if not need <= fields:
            raise EvalError(f"{path}: needs columns source_image (or image), box_index, text; has {reader.fieldnames}")
        if split != "all" and "suggested_split" not in fields:
            raise EvalError(f"{path}: has no suggested_split column to take split {split!r} from")
        for n, row in enumerate(reader, 2):
            if split != "all" and row["suggested_split"] != split:
                continue
            try:
                idx = int(row["box_index"])
            except ValueError as exc:
                raise EvalError(f"{path}:{n}: box_index {row['box_index']!r} is not an integer") from exc
            out[(Path(row[image]).stem, idx)] = row["text"].strip().upper()
    return out


def load_ocr_folder(folder: Path, split: str) -> list[tuple[Path, str]]:
    """labels.csv (file, text[, suggested_split]) -> [(image path, text)] in `split` (if the column exists)."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise EvalError(f"{folder}: labels.csv not found")
    out: list[tuple[Path, str]] = []
    with labels.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"file", "text"} <= set(reader.fieldnames):
            raise EvalError(f"{labels}: needs columns file,text, has {reader.fieldnames}")
        has_split = "suggested_split" in reader.fieldnames
        for row in reader:
            if split != "all" and has_split and row["suggested_split"] != split:
                continue
            path = folder / row["file"]
            if not path.is_file() and (folder / "images" / row["file"]).is_file():
                path = folder / "images" / row["file"]  # some sets list names relative to images/
            out.append((path, row["text"].strip().upper()))
    return out


def read_bgr(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise EvalError(f"cannot read image {path}")
    return img


# ---------------------------------------------------------------- scoring
