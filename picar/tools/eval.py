"""`picar eval`: score the plate detector, the OCR and both together on labelled folders.

Detection folders use the shared data layout: `images/` + `labels/` (YOLO `0 cx cy w h`, normalised)
and optionally `index.csv` with a `suggested_split` column. `--split val` (the default) takes that
column's val rows; a folder without index.csv is split by SHA-1 of the file stem, as the detector
training does (1 in 5 to val); `--split all` takes every image. A folder holding several such folders
(or a data root with `detect/`) is scored per folder and in total.

Scores: detection recall and precision at IoU 0.5; end-to-end exact-plate accuracy for boxes whose
text is known (`--texts`, e.g. ocr/ro_dashcam_crops/labels.csv: source_image, box_index, text); OCR
exact accuracy on an OCR folder (`--ocr-data`: labels.csv with file,text[,suggested_split]).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.tools.eval_data import (
    EvalError,
    LabelledImage,
    detect_folders,
    load_detect_folder,
    load_ocr_folder,
    load_texts,
    read_bgr,
)
from picar.types import Detection, OcrResult
from picar.vision.grammar import REGIONS
from picar.vision.session import ModelError

IOU = 0.5


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


class Reader(Protocol):
    def read(self, crops: list[np.ndarray], region: str | None = None) -> list[OcrResult]: ...


# ---------------------------------------------------------------- matching


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of `a` (N, 4) and `b` (M, 4), both x1 y1 x2 y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(
    pred: np.ndarray, scores: np.ndarray, gt: np.ndarray, iou_threshold: float = IOU
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching, best score first: (pred_is_tp (N,) bool, gt_matched_to (M,) int, -1 if missed)."""
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    tp = np.zeros(len(pred), bool)
    owner = np.full(len(gt), -1, np.int64)
    if len(pred) == 0 or len(gt) == 0:
        return tp, owner
    ious = iou_matrix(pred, gt)
    for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        cand = np.where(owner < 0, ious[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            owner[j] = i
            tp[i] = True
    return tp, owner


@dataclass(frozen=True)
class Miss:
    """A labelled plate not read right, for `--misses`: why, and how near the reader came."""

    file: str
    text: str
    outcome: str  # "not boxed" (no box at IoU 0.5: `best_iou` and that box's read) or "misread"
    read: str = ""
    confidence: float = 0.0
    rank: int = 0  # the right text's place among the read's candidates (1 = first), 0 where absent
    best_iou: float = 0.0

    @staticmethod
    def of(file: Path, text: str, outcome: str, res: OcrResult | None, best_iou: float = 0.0) -> Miss:
        cands = [t for t, _ in res.candidates] if res is not None else []
        return Miss(str(file), text, outcome, res.text if res is not None else "",
                    round(float(res.confidence), 4) if res is not None else 0.0,
                    cands.index(text) + 1 if text in cands else 0, round(best_iou, 3))


def write_misses(misses: list[Miss], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        names = [f.name for f in fields(Miss)]
        w.writerow(names)
        w.writerows([getattr(m, k) for k in names] for m in misses)


def detections_xyxy(dets: list[Detection]) -> np.ndarray:
    return np.array([[d.x, d.y, d.x + d.w, d.y + d.h] for d in dets], np.float64).reshape(-1, 4)


# ---------------------------------------------------------------- data


@dataclass
class Failure:
    """One thing to show on the contact sheet."""

    kind: str  # "missed", "false_positive", "e2e_misread" (detected, read wrong), "ocr_misread" (OCR folder)
    path: Path
    caption: str
    gt: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    pred: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    crop: np.ndarray | None = None


@dataclass
class Counts:
    images: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    e2e_total: int = 0
    e2e_correct: int = 0
    e2e_detected: int = 0
    photos_with_text: int = 0  # photos with at least one labelled plate text
    first_plate_right: int = 0  # of those, photos whose first plate (as `picar read` orders them) is one of them

    def add(self, other: Counts) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(vars(self))
        d["recall"] = self.tp / max(self.tp + self.fn, 1)
        d["precision"] = self.tp / max(self.tp + self.fp, 1)
        if self.e2e_total:
            d["e2e_accuracy"] = self.e2e_correct / self.e2e_total
            d["e2e_read_given_detected"] = self.e2e_correct / max(self.e2e_detected, 1)
        if self.photos_with_text:
            d["first_plate_accuracy"] = self.first_plate_right / self.photos_with_text
        return d


def score_detection(
    images: list[LabelledImage],
    detector: Detector,
    texts: dict[tuple[str, int], str] | None,
    reader: Reader | None,
    failures: list[Failure],
    times_ms: list[float],
    misses: list[Miss] | None = None,
) -> Counts:
    """Detection counts at IoU 0.5 and, where texts are known and a reader is given, end-to-end reads."""
    from picar.pipeline.loop import crop_plate

    c = Counts()
    for item in images:
        img = read_bgr(item.path)
        h, w = img.shape[:2]
        gt = item.boxes * np.array([w, h, w, h], np.float64)
        t = time.perf_counter()
        dets = detector.detect(img)
        times_ms.append((time.perf_counter() - t) * 1000)
        pred = detections_xyxy(dets)
        tp, owner = match_boxes(pred, np.array([d.score for d in dets]), gt)
        c.images += 1
        c.tp += int(tp.sum())
        c.fp += int((~tp).sum())
        c.fn += int((owner < 0).sum())
        if (owner < 0).any():
            failures.append(Failure("missed", item.path, f"missed {int((owner < 0).sum())}", gt, pred))
        elif (~tp).any():
            failures.append(Failure("false_positive", item.path, f"{int((~tp).sum())} extra", gt, pred))
        if texts is None or reader is None:
            continue
        wanted = [(j, texts[(item.path.stem, j)]) for j in range(len(gt)) if (item.path.stem, j) in texts]
        if not wanted:
            continue
        crops = [crop_plate(img, d) for d in dets]
        reads = reader.read(crops) if crops else []  # every box once: the labelled ones and the photo's first
        for j, text in wanted:
            c.e2e_total += 1
            if owner[j] < 0:
                if misses is not None:
                    near = iou_matrix(pred, gt[j: j + 1])[:, 0]
                    k = int(np.argmax(near)) if len(near) else -1
                    best = float(near[k]) if k >= 0 else 0.0
                    misses.append(Miss.of(item.path, text, "not boxed", reads[k] if best > 0 else None, best))
                continue
            c.e2e_detected += 1
            res = reads[int(owner[j])]
            if res.text == text:
                c.e2e_correct += 1
            else:
                failures.append(Failure("e2e_misread", item.path, f"{text} read {res.text or '-'}",
                                        crop=crops[int(owner[j])]))
                if misses is not None:
                    misses.append(Miss.of(item.path, text, "misread", res))
        c.photos_with_text += 1
        c.first_plate_right += first_plate_right(dets, reads, {text for _, text in wanted})
    return c


def first_plate_right(dets: list[Detection], reads: list[OcrResult], texts: set[str]) -> bool:
    """Whether the first plate `picar read` would list for this photo (its boxes and their reads, in
    `plate_order`) spells one of its labelled plates: what a benchmark scoring one plate a photo sees."""
    from picar.tools.read import PhotoPlate, plate_order

    plates = sorted((PhotoPlate(d, r) for d, r in zip(dets, reads, strict=True) if r.text), key=plate_order)
    return bool(plates) and plates[0].ocr.text in texts


def score_ocr(
    items: list[tuple[Path, str]], reader: Reader, failures: list[Failure], batch: int = 32,
    misses: list[Miss] | None = None,
) -> dict[str, Any]:
    """Exact-text accuracy and character accuracy (per position, same-length reads) on plate crops."""
    correct, chars_ok, chars_total = 0, 0, 0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        crops = [read_bgr(p) for p, _ in chunk]
        for (path, text), crop, res in zip(chunk, crops, reader.read(crops), strict=True):
            chars_total += len(text)
            chars_ok += sum(a == b for a, b in zip(res.text, text, strict=False)) if len(res.text) == len(text) else 0
            if res.text == text:
                correct += 1
            else:
                failures.append(Failure("ocr_misread", path, f"{text} read {res.text or '-'}", crop=crop))
                if misses is not None:
                    misses.append(Miss.of(path, text, "misread", res))
    n = len(items)
    return {"crops": n, "correct": correct, "accuracy": correct / max(n, 1),
            "char_accuracy": chars_ok / max(chars_total, 1)}


# ---------------------------------------------------------------- output


def _tile(f: Failure, tw: int, th: int) -> np.ndarray:
    tile = np.full((th, tw, 3), 32, np.uint8)
    body_h = th - 30  # two caption lines below the picture
    if f.crop is not None:
        img = f.crop
        scale = min(tw / max(img.shape[1], 1), body_h / max(img.shape[0], 1), 4.0)
    else:
        img = read_bgr(f.path)
        scale = min(tw / img.shape[1], body_h / img.shape[0])
    nw, nh = max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    for boxes, colour in ((f.gt, (0, 220, 0)), (f.pred, (0, 0, 255))):
        for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4) * scale:
            cv2.rectangle(small, (int(x1), int(y1)), (int(x2), int(y2)), colour, 1)
    tile[:nh, :nw] = small
    # The file on one line and what went wrong on its own line, so a long name never hides the read.
    for text, y in ((f"{f.kind}: {f.path.stem}"[:58], th - 17), (f.caption[:52], th - 4)):
        cv2.putText(tile, text, (2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(failures: list[Failure], path: Path, limit: int = 48, cols: int = 4) -> int:
    """Save up to `limit` failures as a grid PNG (green = truth, red = detector); returns tiles drawn."""
    shown = failures[:limit]
    tw, th = 320, 198
    rows = max(1, -(-len(shown) // cols))
    sheet = np.full((rows * th, cols * tw, 3), 16, np.uint8)
    for i, f in enumerate(shown):
        r, c = divmod(i, cols)
        sheet[r * th : r * th + th - 2, c * tw : c * tw + tw - 2] = _tile(f, tw - 2, th - 2)
    if not shown:
        cv2.putText(sheet, "no failures", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet):
        raise EvalError(f"cannot write {path}")
    return len(shown)


def format_table(report: dict[str, Any]) -> str:
    lines = []
    det = report.get("detection")
    if det:
        lines.append(f"Detection at IoU {IOU} ({report['detector']})")
        lines.append(f"{'folder':<32}{'images':>7}{'plates':>7}{'recall':>8}{'precision':>10}{'e2e':>14}"
                     f"{'first plate':>16}")
        for name, c in det.items():
            e2e = f"{c['e2e_correct']}/{c['e2e_total']} {c['e2e_accuracy']:.3f}" if c.get("e2e_total") else "-"
            first = (f"{c['first_plate_right']}/{c['photos_with_text']} {c['first_plate_accuracy']:.3f}"
                     if c.get("photos_with_text") else "-")
            lines.append(f"{name:<32}{c['images']:>7}{c['tp'] + c['fn']:>7}{c['recall']:>8.3f}"
                         f"{c['precision']:>10.3f}{e2e:>14}{first:>16}")
        if "detect_ms" in report:
            t = report["detect_ms"]
            lines.append(f"detect time per image: median {t['median']:.1f} ms, p90 {t['p90']:.1f} ms")
    ocr = report.get("ocr")
    if ocr:
        lines.append(f"OCR ({report['ocr_model']}) on {ocr['folder']}: {ocr['correct']}/{ocr['crops']} exact "
                     f"= {ocr['accuracy']:.3f}, char accuracy {ocr['char_accuracy']:.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="picar eval", description="Score the detector and OCR on labelled folders.")
    ap.add_argument("--data", type=Path, help="detect folder (images/, labels/[, index.csv]) or a folder of them")
    ap.add_argument("--split", default="val", help="val (default), train or all")
    ap.add_argument("--texts", type=Path, help="CSV with source_image (or image), box_index, text: end-to-end accuracy")
    ap.add_argument("--texts-split", default="all",
                    help="score only the images with --texts rows of this suggested_split, and those rows (default "
                         "all; e.g. val with --split all for a folder whose texts carry the split)")
    ap.add_argument("--ocr-data", type=Path, help="OCR folder with labels.csv (file, text[, suggested_split])")
    ap.add_argument("--ocr-split", default="val", help="split of --ocr-data when it has one (default val)")
    ap.add_argument("--json", type=Path, help="write the scores here")
    ap.add_argument("--failures", type=Path, help="save a contact sheet of failures (PNG)")
    ap.add_argument("--misses", type=Path, metavar="CSV",
                    help="write every labelled plate not read right: file, text, outcome (not boxed at IoU "
                         "0.5, or misread), read, confidence, the right text's rank among the candidates "
                         "(0: absent), the best box's IoU")
    ap.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    ap.add_argument("--ocr", type=Path, default=DEFAULT_OCR)
    ap.add_argument("--threshold", type=float, help="detector score threshold (default: the sidecar's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tile-scale", type=float, metavar="S",
                    help="also look at large photos at scale >= S (as `picar read` does, 0.5 there)")
    ap.add_argument("--vote", action="store_true",
                    help="read each crop as cut, an unsure one also tighter, and vote (as `picar read` does)")
    ap.add_argument("--region", choices=REGIONS,
                    help="decode each read with this region's plate grammars, as the daemon and `picar read` do "
                         "(default: the model's raw reads)")
    return ap


@dataclass(frozen=True)
class _Reading:
    """The OCR as an evaluation reads it: voted over two cuts or not, fitted to a region or not."""

    ocr: Any
    vote: bool
    region: str | None

    def read(self, crops: list[np.ndarray], region: str | None = None) -> list[OcrResult]:
        fn = self.ocr.read_voted if self.vote else self.ocr.read
        return list(fn(crops, region or self.region))


@dataclass(frozen=True)
class _Tiled:
    """A detector that also looks at overlapping windows of large images."""

    detector: Any
    min_scale: float

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self.detector.detect_tiled(image, self.min_scale))


def eval_main(argv: list[str]) -> int:
    """`picar eval`: print a score table; 0 on success, 2 on bad input."""
    args = _parser().parse_args(argv)
    if args.data is None and args.ocr_data is None:
        print("picar eval: give --data (detection) and/or --ocr-data (OCR)")
        return 2
    try:
        report = run_eval(args)
    except (EvalError, ModelError, FileNotFoundError) as exc:
        print(f"picar eval: {exc}")
        return 2
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"scores written to {args.json}")
    return 0


def run_eval(args: argparse.Namespace) -> dict[str, Any]:
    """Run every requested score; returns the JSON-able report (and writes the contact sheet)."""
    report: dict[str, Any] = {"iou": IOU, "split": args.split}
    failures: list[Failure] = []
    misses: list[Miss] | None = [] if args.misses else None
    # check the data before paying for model loading
    folders = detect_folders(args.data) if args.data is not None else []
    ocr_items = load_ocr_folder(args.ocr_data, args.ocr_split) if args.ocr_data is not None else []
    texts = load_texts(args.texts, args.texts_split) if args.texts else None
    reader: Reader | None = None
    needs_ocr = args.ocr_data is not None or args.texts is not None
    if needs_ocr:
        from picar.vision.ocr import PlateOcr

        if not args.ocr.is_file():
            raise EvalError(f"OCR model not found: {args.ocr} (give --ocr)")
        plain_ocr = PlateOcr(args.ocr, threads=args.threads)
        reader = _Reading(plain_ocr, bool(args.vote), args.region)
        report["ocr_model"] = str(args.ocr)
        report["ocr_vote"] = bool(args.vote)
        report["ocr_region"] = args.region
    if args.data is not None:
        from picar.vision.detector import PlateDetector

        if not args.detector.is_file():
            raise EvalError(f"detector model not found: {args.detector} (give --detector)")
        plain = PlateDetector(args.detector, threads=args.threads, score_threshold=args.threshold)
        plain.warm_up()
        detector: Detector = _Tiled(plain, args.tile_scale) if args.tile_scale else plain
        report["tile_scale"] = args.tile_scale
        report["detector"] = str(args.detector)
        report["score_threshold"] = plain.threshold
        total = Counts()
        per: dict[str, dict[str, Any]] = {}
        times: list[float] = []
        splits: dict[str, str] = {}
        for folder in folders:
            images, how = load_detect_folder(folder, args.split)
            if texts is not None and args.texts_split != "all":
                stems = {stem for stem, _ in texts}
                images = [i for i in images if i.path.stem in stems]
                how += f"; only images with --texts rows of split {args.texts_split}"
            splits[folder.name] = how
            c = score_detection(images, detector, texts, reader, failures, times, misses)
            per[folder.name] = c.as_dict()
            total.add(c)
        if len(per) > 1:
            per["total"] = total.as_dict()
        report["detection"] = per
        report["split_rule"] = splits
        if times:
            report["detect_ms"] = {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}
    if args.ocr_data is not None:
        assert reader is not None
        report["ocr"] = {"folder": str(args.ocr_data), **score_ocr(ocr_items, reader, failures, misses=misses)}
    if misses is not None:
        write_misses(misses, args.misses)
        report["misses"] = len(misses)
    if args.failures:
        report["failures_shown"] = contact_sheet(failures, args.failures)
        report["failures_total"] = len(failures)
    return report
