"""The labelled real plate crops of ../shared/data/ocr, loaded without torch: the trainer, the evaluation
and the cross-CPU check (picar.train.cpu_check, which runs under an emulator) all read them here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Real sets: (folder, used for training). ar_cnn_ocr_lp has no split and was its authors' held-out
# benchmark: evaluation only. ro_dashcam_crops has 53 train plates only, so it gets a small weight.
# OI_CROPS is not a folder of crops: its plates are cut from the boxes of the Open Images photos
# (detect/mixed_openimages_lp, texts.csv) by `load_box_crops`.
OI_CROPS = "oi_lp_boxes"
REAL_SETS = (
    "us_openalpr_seg_and_ocr",
    "br_openalpr_train_detector",
    "eu_openalpr_train_detector_eu2",
    "ro_dashcam_crops",
    "ar_cnn_ocr_lp",
    "eu_openalpr_train_detector_eu1",
    "ua_nomeroff_examples",
    OI_CROPS,
)
# The format grammar (picar.vision.grammar) each val set is read with in the second score.
REGION_OF = {"us_openalpr_seg_and_ocr": "us", "br_openalpr_train_detector": "br",
             "eu_openalpr_train_detector_eu2": "eu", "ro_dashcam_crops": "ro", "ar_cnn_ocr_lp": "ar",
             "eu_openalpr_train_detector_eu1": "eu", "ua_nomeroff_examples": "ua", OI_CROPS: "auto"}
# Labels a set's SOURCE.md says to drop when the charset is Latin-only (a trailer plate in real Cyrillic).
SKIPPED_TEXTS = {"ua_nomeroff_examples": frozenset({"7686ЖЦ"})}
OI_FOLDER = Path("detect") / "mixed_openimages_lp"
# The detector's crop (picar.pipeline.loop.crop_plate): the box and 6 % / 12 % of it on each side.
DETECTOR_MARGIN = (0.06, 0.12)
# Context kept around a training box, so that the trainer can cut it as a detector would (looser,
# tighter, shifted: ocr_data.crop_warp) from the real photo rather than from a flat border.
CONTEXT_MARGIN = (0.35, 0.6)


@dataclass(frozen=True)
class RealCrop:
    """One labelled real crop at its original size (grayscale for training, BGR for evaluation)."""

    dataset: str
    file: str
    image: np.ndarray
    text: str
    # The plate's box (x, y, w, h) inside `image` when the image is a wider cut of the photo; None when the
    # image is the crop itself.
    box: tuple[float, float, float, float] | None = None


def _resolve(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file() and (folder / "images" / name).is_file():
        path = folder / "images" / name  # ar_cnn_ocr_lp lists names relative to images/
    return path


def load_real(data_root: Path, dataset: str, split: str, *, color: bool = False, max_chars: int) -> list[RealCrop]:
    """Rows of `dataset` in `split` ("train" or "val"). Skips drop_exact_duplicate and suspect labels;
    a set without a split column counts as val only (never trained on)."""
    if dataset == OI_CROPS:
        return load_box_crops(data_root, split, color=color, max_chars=max_chars)
    folder = Path(data_root) / "ocr" / dataset
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"no labels.csv in {folder}")
    out: list[RealCrop] = []
    with labels.open(newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            row_split = row.get("suggested_split") or "val"
            if row_split != split or row.get("suspect_label", "") == "yes":
                continue
            text = row["text"].strip().upper()
            if text in SKIPPED_TEXTS.get(dataset, ()):
                continue
            if not text or not text.isalnum() or not text.isascii() or len(text) > max_chars:
                raise ValueError(f"{labels}:{lineno}: text {text!r} is not 1-{max_chars} chars A-Z0-9")
            path = _resolve(folder, row["file"])
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"{labels}:{lineno}: cannot read image {path}")
            if not color:  # the same conversion the runtime applies to BGR crops
                img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            out.append(RealCrop(dataset, row["file"], img, text))
    return out


def _cut(image: np.ndarray, box: tuple[float, float, float, float], margin: tuple[float, float]
         ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """`image` cut to `box` plus `margin` (shares of the box's width and height), clipped; and the box
    inside the cut."""
    x, y, w, h = box
    ih, iw = image.shape[:2]
    x0, y0 = max(0, int(x - w * margin[0])), max(0, int(y - h * margin[1]))
    x1, y1 = min(iw, int(np.ceil(x + w + w * margin[0]))), min(ih, int(np.ceil(y + h + h * margin[1])))
    return image[y0:y1, x0:x1], (x - x0, y - y0, w, h)


def load_box_crops(data_root: Path, split: str, *, color: bool = False, max_chars: int) -> list[RealCrop]:
    """The plates of detect/mixed_openimages_lp whose text texts.csv gives, in `split`. Val plates are cut as
    the detector cuts them (DETECTOR_MARGIN, what the runtime reads); train plates keep CONTEXT_MARGIN
    around their box, which `RealCrop.box` marks, for the trainer's detector-like cuts."""
    folder = Path(data_root) / OI_FOLDER
    texts = folder / "texts.csv"
    if not texts.is_file():
        raise FileNotFoundError(f"no texts.csv in {folder}")
    out: list[RealCrop] = []
    with texts.open(newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            if row["suggested_split"] != split:
                continue
            text = row["text"].strip().upper()
            if not text or not text.isalnum() or not text.isascii() or len(text) > max_chars:
                raise ValueError(f"{texts}:{lineno}: text {text!r} is not 1-{max_chars} chars A-Z0-9")
            stem = Path(row["image"]).stem
            lines = (folder / "labels" / f"{stem}.txt").read_text().split("\n")
            box_index = int(row["box_index"])
            fields = lines[box_index].split() if box_index < len(lines) else []
            if len(fields) != 5:
                raise ValueError(f"{texts}:{lineno}: labels/{stem}.txt has no box {box_index}")
            img = cv2.imread(str(folder / "images" / row["image"]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"{texts}:{lineno}: cannot read image {row['image']}")
            if not color:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            ih, iw = img.shape[:2]
            cx, cy, bw, bh = (float(v) for v in fields[1:])
            box = ((cx - bw / 2) * iw, (cy - bh / 2) * ih, bw * iw, bh * ih)
            name = f"{row['image']}#{box_index}"
            if split == "train":
                cut, inner = _cut(img, box, CONTEXT_MARGIN)
                out.append(RealCrop(OI_CROPS, name, np.ascontiguousarray(cut), text, inner))
            else:
                cut, _ = _cut(img, box, DETECTOR_MARGIN)
                out.append(RealCrop(OI_CROPS, name, np.ascontiguousarray(cut), text))
    return out


UA_FOLDER = "ua_nomeroff_examples"


def e2e_texts(data_root: Path, which: str, split: str) -> list[tuple[str, int, str]]:
    """(image stem, box index, text) of the plates with text in a detect folder, for `picar eval --texts`:
    `oi` the Open Images boxes of texts.csv, `ua` the Ukrainian photos (their texts are in the OCR
    folder's labels.csv, whose box is matched to the detect label by its shape). `split`: val, train, all."""
    out: list[tuple[str, int, str]] = []
    if which == "oi":
        with (Path(data_root) / OI_FOLDER / "texts.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                if split in ("all", row["suggested_split"]):
                    out.append((Path(row["image"]).stem, int(row["box_index"]), row["text"].strip().upper()))
        return out
    if which != "ua":
        raise ValueError(f"unknown set {which!r}: oi or ua")
    labels_dir = Path(data_root) / "detect" / UA_FOLDER / "labels"
    with (Path(data_root) / "ocr" / UA_FOLDER / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            text = row["text"].strip().upper()
            if split not in ("all", row["suggested_split"]) or text in SKIPPED_TEXTS[UA_FOLDER]:
                continue
            stem = Path(row["file"]).stem
            boxes = [line.split() for line in (labels_dir / f"{stem}.txt").read_text().splitlines() if line.strip()]
            aspect = (float(row["box_x1"]) - float(row["box_x0"])) / (float(row["box_y1"]) - float(row["box_y0"]))
            img = cv2.imread(str(Path(data_root) / "detect" / UA_FOLDER / "images" / f"{stem}.jpg"))
            ih, iw = img.shape[:2]
            # the detect box whose shape is closest to the OCR label's (one photo holds a second, untexted plate)
            index = min(range(len(boxes)), key=lambda k: abs(np.log(
                float(boxes[k][3]) * iw / (float(boxes[k][4]) * ih) / aspect)))
            out.append((stem, index, text))
    return out


if __name__ == "__main__":  # python -m picar.train.real_crops oi|ua val|train|all > texts.csv
    import sys

    if len(sys.argv) != 3:
        print("usage: python -m picar.train.real_crops oi|ua val|train|all [> texts.csv]", file=sys.stderr)
        sys.exit(2)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("source_image", "box_index", "text"))
    writer.writerows(e2e_texts(Path("../shared/data"), sys.argv[1], sys.argv[2]))
