"""The Moldovan evaluation set of issue 19: rendered plates of every Moldovan series, never trained on.

    python -m picar.train.md_eval --out runs/md_eval [--per-series 30] [--seed 19000]
    python -m picar.train.md_eval --out runs/md_eval --score models/plate_ocr.onnx [--region md]
    python -m picar.train.md_eval --out runs/md_fit --seed 19001 --split train    # the priors' fit set

The first command renders `--per-series` plates of every series of the `md` grammar
(`picar.vision.grammar`), each with camera damage of a random strength (`plates.degrade`, 0.1-0.9, as the
training draws it), on a car-body surround, cut as the detector cuts a plate (the box with 6 % / 12 %
margins, the box itself off by a few per cent), and writes them as PNG crops with `labels.csv` (file,
text, series, damage, suggested_split=val): a folder `picar eval --ocr-data` reads too. Its seed is not
one that any training pool uses (`ocr_cache` seeds 2026xxxx); `--check-pools` counts eval texts that also
occur in given pools. The second scores a model on it, exact plate after fitting to `--region`, per
series and in total.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.train.plates import PLATE_FONTS, PLATE_LIKE_FONTS, degrade
from picar.train.plates_grammar import render_series
from picar.vision import grammar

DETECTOR_MARGIN = (0.06, 0.12)  # picar.pipeline.loop.crop_plate


def _surround(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.integers(0, 256, 3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    img += np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * rng.uniform(-50, 50)
    img += rng.normal(0, rng.uniform(2, 10), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_crop(rng: np.random.Generator, s: grammar.Series) -> tuple[np.ndarray, str, float]:
    """One damaged plate of series `s` as the detector would hand it to the OCR: (BGR crop, text, damage)."""
    plate = render_series(rng, s, fonts=PLATE_FONTS + PLATE_LIKE_FONTS)
    img = plate.image
    ph, pw = img.shape[:2]
    target_w = rng.uniform(70, 220) if plate.rows == 1 else rng.uniform(45, 120)
    scale = target_w / pw
    pw2, ph2 = max(24, int(pw * scale)), max(12, int(ph * scale))
    img = cv2.resize(img, (pw2, ph2), interpolation=cv2.INTER_AREA)
    mx, my = int(pw2 * 0.4) + 4, int(ph2 * 0.6) + 4
    canvas = _surround(rng, ph2 + 2 * my, pw2 + 2 * mx)
    canvas[my: my + ph2, mx: mx + pw2] = img
    damage = float(rng.uniform(0.1, 0.9))
    canvas = degrade(canvas, rng, damage)
    # the detector's box is a little off (up to 4 % per side), then cut with crop_plate's margins
    err = rng.uniform(-0.04, 0.04, 4)
    x0 = mx + pw2 * (err[0] - DETECTOR_MARGIN[0])
    x1 = mx + pw2 * (1 + err[1] + DETECTOR_MARGIN[0])
    y0 = my + ph2 * (err[2] - DETECTOR_MARGIN[1])
    y1 = my + ph2 * (1 + err[3] + DETECTOR_MARGIN[1])
    crop = canvas[max(0, int(y0)): int(np.ceil(y1)), max(0, int(x0)): int(np.ceil(x1))]
    return np.ascontiguousarray(crop), plate.text, damage


def build(out: Path, per_series: int, seed: int, grammar_name: str = "md", split: str = "val") -> int:
    """Render the set into `out` (images/ + labels.csv, every row in `split`); returns how many crops."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, s in enumerate(grammar.grammar_series(grammar_name)):
        rng = np.random.default_rng([seed, k])
        for i in range(per_series):
            crop, text, damage = render_crop(rng, s)
            name = f"images/{s.name.replace('.', '_')}_{i:03d}.png"
            cv2.imwrite(str(out / name), crop)
            rows.append({"file": name, "text": text, "series": s.name, "damage": round(damage, 3),
                         "suggested_split": split})
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def load(folder: Path) -> list[dict[str, Any]]:
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["image"] = cv2.imread(str(folder / r["file"]), cv2.IMREAD_COLOR)
        if r["image"] is None:
            raise FileNotFoundError(f"{folder / 'labels.csv'}: cannot read {r['file']}")
    return rows


def score(model: Path, folder: Path, region: str | None) -> dict[str, Any]:
    """Exact-plate accuracy of `model` on the set, per series and in total, read with `region`."""
    from picar.vision.ocr import PlateOcr

    ocr = PlateOcr(model, threads=1)
    rows = load(folder)
    per: dict[str, list[bool]] = defaultdict(list)
    misses = []
    for i in range(0, len(rows), 32):
        part = rows[i: i + 32]
        for r, res in zip(part, ocr.read([r["image"] for r in part], region), strict=True):
            ok = res.text == r["text"]
            per[r["series"]].append(ok)
            if not ok:
                misses.append(f"{r['file']}: {r['text']} read {res.text}")
    hits = [ok for v in per.values() for ok in v]
    return {"model": str(model), "region": region, "n": len(hits), "exact": round(float(np.mean(hits)), 4),
            "per_series": {k: f"{sum(v)}/{len(v)}" for k, v in per.items()}, "misses": misses}


def pool_overlap(folder: Path, pools: list[Path]) -> int:
    """How many of the set's texts occur among the labels of the given synthetic pools."""
    from picar.train.ocr_model import VOCAB

    texts = {r["text"] for r in csv.DictReader((folder / "labels.csv").open(newline=""))}
    seen: set[str] = set()
    for pool in pools:
        for shard in sorted(pool.glob("synth_*.npz")):
            for lab in np.load(shard)["labels"]:
                seen.add("".join(VOCAB[int(c)] for c in lab if VOCAB[int(c)] != VOCAB[-1]))
    return len(texts & seen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/md_eval"))
    p.add_argument("--per-series", type=int, default=30)
    p.add_argument("--seed", type=int, default=19000)
    p.add_argument("--score", type=Path, help="an OCR model (.onnx with its sidecar) to score on the set")
    p.add_argument("--region", default="md")
    p.add_argument("--split", default="val", choices=("val", "train"),
                   help="the rows' suggested_split when rendering: train for a fit set (grammar_priors --rendered)")
    p.add_argument("--check-pools", type=Path, nargs="+", help="synthetic pools (ocr_cache folders) to compare")
    args = p.parse_args(argv)
    if not (args.out / "labels.csv").is_file():
        n = build(args.out, args.per_series, args.seed, split=args.split)
        print(f"rendered {n} crops into {args.out}", file=sys.stderr)
    if args.check_pools:
        print(json.dumps({"texts_also_in_pools": pool_overlap(args.out, args.check_pools)}))
    if args.score:
        print(json.dumps(score(args.score, args.out, args.region or None), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
