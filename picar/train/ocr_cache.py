"""Pre-render synthetic OCR inputs into shards, on every core, so training spends its time learning.

    python -m picar.train.ocr_cache --out runs/ocr_synth --samples 200000 [--workers 2] [--seed N]
    python -m picar.train.ocr_cache --out runs/ocr_synth_din --samples 60000 --seed 20261124 --plate-like-fonts
    python -m picar.train.ocr_cache --out runs/ocr_synth_badges --samples 30000 --seed 20261125 \
        --all-fonts --styles eu_square moto --badges 0.8

Rendering a plate costs about as much as a training step; a cache rendered once in parallel and
re-jittered per use (`picar.train.ocr_data.jitter`) gives the trainer several times the throughput.
Shard i holds samples that are a pure function of (seed, i, j); existing shards are kept, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from picar.train.ocr_data import _seed, encode_text, synth_input
from picar.train.ocr_model import INPUT_HEIGHT, INPUT_WIDTH, MAX_SLOTS
from picar.train.plates import PLATE_FONTS, PLATE_LIKE_FONTS, STYLES, require_fonts


def render_shard(out: Path, seed: int, index: int, size: int, fonts: tuple[str, ...] = PLATE_FONTS,
                 styles: tuple[str, ...] | None = None, badges: float = 0.0) -> Path:
    import cv2

    cv2.setNumThreads(1)
    path = out / f"synth_{index:05d}.npz"
    if path.is_file():
        return path
    images = np.empty((size, INPUT_HEIGHT, INPUT_WIDTH), np.uint8)
    labels = np.empty((size, MAX_SLOTS), np.int64)
    for j in range(size):
        img, text = synth_input(np.random.default_rng(_seed(seed, 7_000_000 + index, j)), fonts, styles, badges)
        images[j] = img
        labels[j] = encode_text(text)
    tmp = out / f"synth_{index:05d}.tmp.npz"
    np.savez(tmp, images=images, labels=labels)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/ocr_synth"))
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--shard", type=int, default=5_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261123)
    faces = p.add_mutually_exclusive_group()
    faces.add_argument("--plate-like-fonts", action="store_true",
                       help="draw registrations only in the narrow DIN-style faces (plates.PLATE_LIKE_FONTS)")
    faces.add_argument("--all-fonts", action="store_true", help="draw in both the usual and the DIN-style faces")
    p.add_argument("--styles", nargs="+", choices=STYLES, metavar="STYLE",
                   help=f"render only these plate styles (of: {', '.join(STYLES)})")
    p.add_argument("--badges", type=float, default=0.0,
                   help="probability that a two-row plate carries badges beside its rows (0..1)")
    args = p.parse_args(argv)
    if not 0.0 <= args.badges <= 1.0:
        p.error(f"--badges is a probability in 0..1, got {args.badges}")
    fonts = (PLATE_FONTS + PLATE_LIKE_FONTS if args.all_fonts
             else PLATE_LIKE_FONTS if args.plate_like_fonts else PLATE_FONTS)
    styles = tuple(args.styles) if args.styles else None
    try:
        require_fonts(fonts)
    except FileNotFoundError as e:
        p.error(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    shards = (args.samples + args.shard - 1) // args.shard
    t0 = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [pool.submit(render_shard, args.out, args.seed, i, args.shard, fonts, styles, args.badges)
                for i in range(shards)]
        for done, job in enumerate(jobs, start=1):
            path = job.result()
            rate = done * args.shard / (time.monotonic() - t0)
            print(f"{path.name} ({done}/{shards}, {rate:.0f} samples/s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
