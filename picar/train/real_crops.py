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
REAL_SETS = (
    "us_openalpr_seg_and_ocr",
    "br_openalpr_train_detector",
    "eu_openalpr_train_detector_eu2",
    "ro_dashcam_crops",
    "ar_cnn_ocr_lp",
)
# The format grammar (picar.vision.formats) each val set is re-ranked with in the second score.
REGION_OF = {"us_openalpr_seg_and_ocr": "us", "br_openalpr_train_detector": "br",
             "eu_openalpr_train_detector_eu2": "eu", "ro_dashcam_crops": "ro", "ar_cnn_ocr_lp": "ar"}


@dataclass(frozen=True)
class RealCrop:
    """One labelled real crop at its original size (grayscale for training, BGR for evaluation)."""

    dataset: str
    file: str
    image: np.ndarray
    text: str


def _resolve(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file() and (folder / "images" / name).is_file():
        path = folder / "images" / name  # ar_cnn_ocr_lp lists names relative to images/
    return path


def load_real(data_root: Path, dataset: str, split: str, *, color: bool = False, max_chars: int) -> list[RealCrop]:
    """Rows of `dataset` in `split` ("train" or "val"). Skips drop_exact_duplicate and suspect labels;
    a set without a split column counts as val only (never trained on)."""
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
