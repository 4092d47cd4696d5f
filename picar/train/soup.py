"""Average the weights of several fine-tunes of one model (a "model soup") into a checkpoint that
`train_ocr --export-only` exports like any other.

Runs fine-tuned from one starting point stay in one basin of the loss, so their mean is a model too,
and it often reads better than each of them at no cost at run time: the same graph, the same speed.
Batch-norm running statistics are averaged with the weights.

    python -m picar.train.soup --out runs/ocr_soup runs/ocr_t32f/best.pt runs/ocr_t32i/best.pt
    python -m picar.train.train_ocr --export-only --data ../shared/data --out runs/ocr_soup --ship DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def _weights(ck: dict[str, Any]) -> dict[str, torch.Tensor]:
    return ck["weights"] if "weights" in ck else ck["ema"]


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The mean of the checkpoints' weights (their EMA weights for a last.pt), as a best.pt-style
    checkpoint carrying the first one's training arguments. Raises ValueError naming the first
    checkpoint whose layers or shapes differ from the first's."""
    if len(paths) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    cks = [torch.load(p, weights_only=False) for p in paths]
    first = _weights(cks[0])
    for path, ck in zip(paths[1:], cks[1:], strict=True):
        w = _weights(ck)
        if w.keys() != first.keys() or any(w[k].shape != first[k].shape for k in first):
            raise ValueError(f"{path}: its layers or shapes differ from {paths[0]}; only fine-tunes of one "
                             "model can be averaged")
    mean: dict[str, torch.Tensor] = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            mean[key] = torch.stack([_weights(ck)[key] for ck in cks]).mean(dim=0)
        else:
            mean[key] = tensor.clone()  # BN's num_batches_tracked: not used in eval
    return {"weights": mean, "source": "soup", "epoch": None, "soup": [str(p) for p in paths],
            "args": cks[0]["args"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m picar.train.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="run folder to write best.pt into")
    p.add_argument("checkpoints", type=Path, nargs="+", help="best.pt or last.pt of runs of one model")
    args = p.parse_args(argv)
    for path in args.checkpoints:
        if not path.is_file():
            p.error(f"checkpoint not found: {path}")
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / "best.pt").exists() or (args.out / "last.pt").exists():
        p.error(f"{args.out} already holds a checkpoint; choose an empty folder")
    try:
        soup = average_checkpoints(args.checkpoints)
    except ValueError as exc:
        p.error(str(exc))
    torch.save(soup, args.out / "best.pt")
    print(f"averaged {len(args.checkpoints)} checkpoints into {args.out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
