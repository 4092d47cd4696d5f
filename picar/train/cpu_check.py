"""Does the shipped OCR read the same on every x86 CPU? Read the val crops here, and under an emulated CPU.

    python -m picar.train.cpu_check read --data ../shared/data --label native --out native.json
    qemu-x86_64 -cpu Haswell .venv/bin/python -m picar.train.cpu_check read ... --label haswell --out h.json
    python -m picar.train.cpu_check compare native.json h.json      # exit 1 if a set moves > 0.5 points

onnxruntime picks its int8 kernels by CPU: VNNI where the CPU has it, AVX2's VPMADDUBSW otherwise, whose
16-bit sums saturate for uint8 x int8 products of large magnitude. `scripts/ocr-cpu-check` runs all three
steps. Torch-free, so that it runs at a bearable speed under qemu-user.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from picar.paths import DEFAULT_OCR
from picar.train.real_crops import REAL_SETS, REGION_OF, load_real
from picar.vision.ocr import PlateOcr
from picar.vision.session import load_sidecar

MAX_DIFF_POINTS = 0.5  # the most a val set's accuracy may move between CPUs


def read_sets(model: Path, data: Path, batch: int = 32) -> dict[str, dict[str, Any]]:
    """Per val set: each crop's one read and region-fitted read, and the exact-plate accuracy of both."""
    ocr = PlateOcr(model, threads=1)
    max_chars = int(load_sidecar(model)["max_chars"])
    out: dict[str, dict[str, Any]] = {}
    for name in REAL_SETS:
        crops = load_real(data, name, "val", color=True, max_chars=max_chars)
        region = REGION_OF.get(name)
        reads: list[str] = []
        fitted: list[str] = []
        for i in range(0, len(crops), batch):
            images = [c.image for c in crops[i: i + batch]]
            reads += [r.text for r in ocr.read(images)]
            fitted += [r.text for r in ocr.read(images, region)]
        truth = [c.text for c in crops]
        out[name] = {
            "n": len(crops), "region": region,
            "exact": round(float(np.mean([a == b for a, b in zip(reads, truth, strict=True)])), 4),
            "exact_after_region": round(float(np.mean([a == b for a, b in zip(fitted, truth, strict=True)])), 4),
            "reads": dict(zip([c.file for c in crops], reads, strict=True)),
            "fitted": dict(zip([c.file for c in crops], fitted, strict=True)),
        }
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[str], bool]:
    """Lines describing how two runs differ per set, and whether every set is within MAX_DIFF_POINTS."""
    lines, ok = [f"{'set':<40} {a['label']:>10} {b['label']:>10}  points  crops read differently"], True
    for name, sa in a["sets"].items():
        sb = b["sets"][name]
        for key in ("exact", "exact_after_region"):
            diff = 100 * (sb[key] - sa[key])
            field = "reads" if key == "exact" else "fitted"
            changed = sum(sa[field][f] != sb[field][f] for f in sa[field])
            ok &= abs(diff) <= MAX_DIFF_POINTS
            lines.append(f"{name + ' ' + ('one read' if key == 'exact' else 'fitted'):<40} "
                         f"{sa[key]:>10.4f} {sb[key]:>10.4f} {diff:>+7.2f}  {changed} of {sa['n']}")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picar.train.cpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rd = sub.add_parser("read", help="read every val crop and write the reads as JSON")
    rd.add_argument("--data", type=Path, required=True, help="the shared data root (holds ocr/)")
    rd.add_argument("--model", type=Path, default=DEFAULT_OCR)
    rd.add_argument("--label", required=True, help="what CPU this is, e.g. native or qemu-Haswell")
    rd.add_argument("--out", type=Path, required=True)
    cp = sub.add_parser("compare", help="compare two read files; exit 1 if a set moves more than 0.5 points")
    cp.add_argument("a", type=Path)
    cp.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "read":
        t0 = time.monotonic()
        sets = read_sets(args.model, args.data)
        args.out.write_text(json.dumps({
            "label": args.label, "model": str(args.model), "onnxruntime": ort.__version__,
            "machine": platform.machine(), "seconds": round(time.monotonic() - t0, 1), "sets": sets}, indent=1))
        for name, s in sets.items():
            print(f"{args.label}: {name}: n={s['n']} one read {s['exact']:.4f} fitted {s['exact_after_region']:.4f}")
        return 0
    a, b = (json.loads(p.read_text()) for p in (args.a, args.b))
    lines, ok = compare(a, b)
    print("\n".join(lines))
    print(f"{'OK' if ok else 'FAIL'}: every set within {MAX_DIFF_POINTS} points" if ok
          else f"FAIL: a set moved more than {MAX_DIFF_POINTS} points")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
