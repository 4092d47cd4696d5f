"""`picar read IMAGE...`: read the plates of still photos, like OpenALPR's `alpr`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.pipeline.loop import crop_plate
from picar.tools.image_header import image_size
from picar.types import Detection, OcrResult
from picar.vision.grammar import REGIONS, GrammarError, grammars_for, shortest_plate
from picar.vision.session import ModelError

# The largest photo read, by its header, before decoding: a decoded image takes 3 bytes a pixel, so this
# bounds one photo at about 200 MB (a 100000x100000 PNG would want 30 GB). 64, not 50: 50-megapixel phone
# cameras give 8160x6144, just over 50 million pixels.
MAX_IMAGE_MEGAPIXELS = 64
MAX_IMAGE_PIXELS = MAX_IMAGE_MEGAPIXELS * 1_000_000


@dataclass(frozen=True)
class PhotoPlate:
    detection: Detection
    ocr: OcrResult


# Still photos are not bound to the frame budget: a photo that the detector's input would shrink below
# 0.5 (by more than `detector.MIN_GAIN`) is looked at whole at 0.5 (`PlateDetector.detect_tiled`), so a small
# plate in a big photo survives. A 1280x720 frame (0.444) costs nothing extra; a 1280x960 photo (0.333) one
# 640x480 input instead of the 320x576 one. So read, Open Images val gives 81 plates of 114 end to end against
# 79 at 0.35 (models/README.ocr.md, "Session 13").
PHOTO_TILE_SCALE = 0.5

# A photo is read alone, so its detector and OCR runs may use the machine's cores (the daemon keeps one
# inference thread: its cameras decode on the others). Two threads instead of one on this project's 2-core
# machine: the 60 largest photos 16.9 against 19.9 ms median, the same reads (README, "Performance", session
# 14). Capped at 4: one photo's small convolutions have little work to split (2 threads ran the detector
# only 1.2-1.35 times as fast as one here).
MAX_PHOTO_THREADS = 4


def photo_threads() -> int:
    """Inference threads for reading photos: the CPUs this process may run on, at most MAX_PHOTO_THREADS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_PHOTO_THREADS, cpus))


class PhotoReader:
    """Detector + OCR + region grammar for single images."""

    def __init__(self, detector_path: Path = DEFAULT_DETECTOR, ocr_path: Path = DEFAULT_OCR,
                 threads: int | None = None, region: str | tuple[str, ...] = "auto",
                 tile_scale: float = PHOTO_TILE_SCALE,
                 vote: bool = True) -> None:
        from picar.vision.detector import PlateDetector
        from picar.vision.ocr import PlateOcr

        grammars_for(region)  # an unknown region name fails here, before the models load
        threads = photo_threads() if threads is None else threads
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.detector = PlateDetector(detector_path, threads=threads)
        self.ocr = PlateOcr(ocr_path, threads=threads)
        if not 0.0 <= tile_scale <= 1.0:
            raise ValueError(f"tile scale must be between 0 (off) and 1, got {tile_scale}")
        self.region = region
        self.tile_scale = tile_scale
        self.vote = vote
        self.detector.warm_up()
        self.ocr.warm_up([region])

    def read(self, image: np.ndarray) -> list[PhotoPlate]:
        """Plates with text, the likeliest first (`plate_order`); a box that reads as no text (no character,
        or fewer than any plate has: a sign, a bolt) is dropped."""
        if self.tile_scale > 0:
            dets = self.detector.detect_tiled(image, self.tile_scale)
        else:
            dets = self.detector.detect(image)
        if not dets:
            return []
        crops = [crop_plate(image, d) for d in dets]
        read = self.ocr.read_voted if self.vote else self.ocr.read
        results = read(crops, self.region)
        return sorted((PhotoPlate(d, r) for d, r in zip(dets, results, strict=True) if r.text), key=plate_order)


def plate_order(p: PhotoPlate) -> tuple[bool, float]:
    """Sort key of a photo's plates: a whole plate read right first. A read shorter than every plate series
    (a sign, a badge, a bolt) goes last; then the detector's plate score times the read's confidence, so a
    sign that looks like a plate but reads as nothing sure no longer comes before the plate (the first
    plate is what a one-plate-a-photo benchmark scores)."""
    return (len(p.ocr.text) < shortest_plate(), -p.detection.score * p.ocr.confidence)


def plate_json(p: PhotoPlate) -> dict[str, Any]:
    return {
        "text": p.ocr.text,
        "confidence": round(float(p.ocr.confidence), 4),
        "series": p.ocr.series,
        "box": [int(v) for v in p.detection.box],
        "candidates": [{"text": t, "confidence": round(float(c), 4)} for t, c in p.ocr.candidates],
    }


def load_photo(path: Path) -> np.ndarray | str:
    """The decoded photo, or why not: the size is checked from the header first, so an oversize image is
    refused without being decoded, and only formats whose header gives the size are decoded."""
    try:
        size = image_size(path)
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot open: {exc.strerror or exc}"
    if size is None:
        return "not a readable image"
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        return f"image too large: {width}x{height} pixels (limit {MAX_IMAGE_MEGAPIXELS} megapixels)"
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    return "not a readable image" if image is None else image


def region_names(value: str) -> tuple[str, ...]:
    """`--region`'s value ("md", "md,ro"): the names, checked (argparse's error names the bad one)."""
    names = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    try:
        grammars_for(names)
    except GrammarError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return names


def _threads(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return n


def read_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar read", description="Read the licence plates in photos.")
    ap.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    ap.add_argument("--region", default="auto", type=region_names, metavar="R[,R...]",
                    help=f"plate grammars: one of {', '.join(REGIONS)}, or several with commas, e.g. md,ro "
                         "(default auto)")
    ap.add_argument("--json", action="store_true", help="one JSON object per image")
    ap.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    ap.add_argument("--ocr", type=Path, default=DEFAULT_OCR)
    ap.add_argument("--threads", type=_threads, default=None, metavar="N",
                    help="inference threads (default: the CPUs this process may use, at most "
                         f"{MAX_PHOTO_THREADS}; {photo_threads()} here)")
    ap.add_argument("--tile-scale", type=float, default=PHOTO_TILE_SCALE, metavar="S",
                    help="look at large photos at scale >= S (whole in one input, or in windows when huge; "
                    "0 = the video input only; "
                    f"default {PHOTO_TILE_SCALE})")
    ap.add_argument("--single-read", action="store_true",
                    help="read each plate once as cut (default: an unsure one also cut tighter, and vote)")
    args = ap.parse_args(argv)
    try:
        reader = PhotoReader(args.detector, args.ocr, threads=args.threads, region=args.region,
                             tile_scale=args.tile_scale, vote=not args.single_read)
    except (ModelError, ValueError, GrammarError) as exc:
        print(f"picar read: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.images:
        image = load_photo(path)
        if isinstance(image, str):
            failed += 1
            msg = image
            if args.json:
                print(json.dumps({"file": str(path), "error": msg, "plates": []}), flush=True)
            else:
                print(f"{path}: error: {msg}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        plates = reader.read(image)
        ms = (time.perf_counter() - t0) * 1000
        if args.json:
            print(json.dumps({"file": str(path), "ms": round(ms, 2), "plates": [plate_json(p) for p in plates]}),
                  flush=True)
        else:
            print(f"{path}: {len(plates)} plate(s) in {ms:.1f} ms")
            for p in plates:
                alts = ", ".join(f"{t} {c:.2f}" for t, c in p.ocr.candidates[1:4])
                print(f"  {p.ocr.text:<10} {p.ocr.confidence:.2f}  {p.ocr.series or 'free text'}  "
                      f"box={list(p.detection.box)}  also: {alts}")
    return 1 if failed else 0
