"""A second plate OCR recipe: CRNN-style CTC over two feature rows.

The backbone squeezes a 64x128 grayscale plate to a 2x32 feature map whose cells each see almost the
whole plate height. The 32 frames of the upper row are followed by the 32 of the lower row, and a
CTC head reads the 64 frames: a two-row plate is read upper row then lower row, a one-row plate on
whichever row the network prefers (the other blank). CTC needs no character alignment, so it learns
from far fewer samples than a fixed-slot head. Same input, alphabet and data as `train_ocr`; the
runtime (`picar.vision.ocr`, decoder "ctc") reads either model from its sidecar.

    python -m picar.train.ocr_ctc --data ../shared/data --out runs/ocr_ctc [--epochs N] [--resume]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from picar.train.ocr_data import TRAIN_WEIGHTS, MixedPlates, load_real
from picar.train.ocr_model import ALPHABET, INPUT_HEIGHT, INPUT_WIDTH, PAD, VOCAB
from picar.train.train_ocr import _exact, load_val
from picar.vision.ocr import decode, preprocess

log = logging.getLogger("ocr_ctc")
BLANK = VOCAB.index(PAD)


def _cbr(cin: int, cout: int, stride: tuple[int, int] | int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class TwoRowCtcNet(nn.Module):
    def __init__(self, classes: int = len(VOCAB), w: int = 16) -> None:
        super().__init__()
        self.classes = classes
        self.features = nn.Sequential(
            _cbr(1, w, 2),                  # 32x64
            _cbr(w, 2 * w, 2),              # 16x32
            _cbr(2 * w, 3 * w),             # 16x32
            _cbr(3 * w, 4 * w, (2, 1)),     # 8x32
            _cbr(4 * w, 6 * w, (2, 1)),     # 4x32
            _cbr(6 * w, 8 * w, (2, 1)),     # 2x32
        )
        self.sequence = nn.Sequential(
            nn.Conv1d(8 * w, 8 * w, 3, padding=1, bias=False), nn.BatchNorm1d(8 * w), nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )
        self.classifier = nn.Conv1d(8 * w, classes, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """float (N, 1, 64, 128) in 0..1 -> logits (N, 64 frames, classes): upper row frames first."""
        f = self.features(x)  # N, C, 2, 32
        seq = torch.cat([f[:, :, 0, :], f[:, :, 1, :]], dim=2)  # N, C, 64
        return self.classifier(self.sequence(seq)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 64, 128, 1) as the runtime feeds it -> per-frame probabilities (N, 64, classes)."""
        f = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return torch.softmax(self.logits(f), dim=-1)


def macs(model: nn.Module) -> int:
    total = 0

    def hook(m: nn.Module, _i: Any, o: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d | nn.Conv1d):
            k = int(np.prod(m.kernel_size))
            total += int(o.numel() // o.shape[0]) * (m.in_channels // m.groups) * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv1d)]
    with torch.no_grad():
        model.eval()
        model.logits(torch.zeros(1, 1, INPUT_HEIGHT, INPUT_WIDTH))
    for h in hs:
        h.remove()
    return total


def evaluate(model: nn.Module, val: dict[str, Any], batch: int = 64) -> dict[str, float]:
    model.eval()
    scores = {}
    with torch.no_grad():
        for name, crops in val.items():
            texts: list[str] = []
            for i in range(0, len(crops), batch):
                x = preprocess([c.image for c in crops[i: i + batch]], INPUT_HEIGHT, INPUT_WIDTH, 1)
                probs = model(torch.from_numpy(x)).numpy()
                texts += [r.text for r in decode(probs, ALPHABET, PAD, top_k=1, max_candidates=1, decoder="ctc")]
            scores[name] = _exact(texts, crops)
    model.train()
    return scores


def train(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    real = [c for name in TRAIN_WEIGHTS for c in load_real(Path(args.data), name, "train")]
    val = load_val(Path(args.data))
    model = TwoRowCtcNet(w=args.width)
    log.info("model: %d params, %.1f M MACs", sum(p.numel() for p in model.parameters()), macs(model) / 1e6)
    model.train()
    steps = args.epoch_size // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps,
                                                pct_start=0.1, div_factor=10, final_div_factor=100)
    start, best = 0, -1.0
    if args.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, best = ck["epoch"] + 1, ck["best"]
        log.info("resumed at epoch %d", start)
    for epoch in range(start, args.epochs):
        ds = MixedPlates(real, steps * args.batch, args.real_share, args.seed, epoch)
        t0 = time.monotonic()
        running = 0.0
        for step, (x, y) in enumerate(DataLoader(ds, batch_size=args.batch, num_workers=0, drop_last=True)):
            logp = model.logits(x.float() / 255.0).log_softmax(-1).transpose(0, 1)  # T, N, C
            lengths = (y != BLANK).sum(1)
            loss = nn.functional.ctc_loss(logp, y[y != BLANK], torch.full((x.shape[0],), logp.shape[0],
                                                                         dtype=torch.long),
                                          lengths, blank=BLANK, zero_infinity=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            if step % 50 == 0:
                rate = (step + 1) * args.batch / (time.monotonic() - t0)
                log.info("epoch %d step %d/%d loss %.3f %.0f samples/s", epoch, step, steps, running, rate)
        scores = evaluate(model, val)
        mean = float(np.mean(list(scores.values())))
        log.info("epoch %d done in %.0f s: val exact %s mean %.4f", epoch, time.monotonic() - t0,
                 {k: round(v, 3) for k, v in scores.items()}, mean)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                 "epoch": epoch, "best": max(best, mean), "args": vars(args), "scores": scores}
        torch.save(state, out / "last.pt")
        if mean > best:
            best = mean
            torch.save(state, out / "best.pt")
            log.info("new best %.4f", best)


def export(args: argparse.Namespace) -> None:
    """best.pt -> ONNX (opset 17), checked against torch, with its sidecar, into --ship."""
    import onnxruntime as ort

    out = Path(args.out)
    ck = torch.load(out / "best.pt", weights_only=False)
    model = TwoRowCtcNet(w=ck["args"]["width"])
    model.load_state_dict(ck["model"])
    model.eval()
    ship = Path(args.ship)
    ship.mkdir(parents=True, exist_ok=True)
    path = ship / "plate_ocr.onnx"
    dummy = torch.zeros(2, INPUT_HEIGHT, INPUT_WIDTH, 1, dtype=torch.uint8)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17, dynamo=False)
    sample = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, INPUT_HEIGHT, INPUT_WIDTH, 1),
                                                                   dtype=np.uint8))
    with torch.no_grad():
        ref = model(sample).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": sample.numpy()})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise SystemExit(f"ONNX output differs from torch by {diff}")
    side = {
        "task": "plate_ocr",
        "version": f"ctc-{datetime.now(UTC):%Y%m%d}",
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": {"name": "image", "shape": [None, INPUT_HEIGHT, INPUT_WIDTH, 1], "dtype": "uint8", "layout": "NHWC",
                  "color": "gray", "resize": "stretch to the input, aspect not kept (INTER_AREA when shrinking)"},
        "output": {"name": "probs", "shape": [None, 64, len(VOCAB)], "meaning": "per-frame softmax, blank last"},
        "alphabet": ALPHABET,
        "pad": PAD,
        "slots": 64,
        "decode": {"decoder": "ctc", "top_k": 3, "max_candidates": 8},
        "thresholds": {"min_char_confidence": 0.3, "min_plate_confidence": 0.2},
        "recipe": "python -m picar.train.ocr_ctc --data ../shared/data --out runs/ocr_ctc",
        "val_exact": ck.get("scores"),
        "onnx_vs_torch_max_abs_diff": diff,
    }
    path.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
    log.info("exported %s (epoch %s, max diff %.2g)", path, ck["epoch"], diff)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picar.train.ocr_ctc", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="runs/ocr_ctc")
    ap.add_argument("--ship", default="runs/ocr_ctc/ship", help="where --export writes plate_ocr.onnx + .json")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--epoch-size", type=int, default=16000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--real-share", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", action="store_true", help="export best.pt instead of training")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(out / "train.log")])
    if args.export:
        export(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
