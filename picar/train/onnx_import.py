"""Start a torch OCR network from a shipped ONNX model, when the training checkpoints are gone.

    python -m picar.train.onnx_import models/plate_ocr.onnx --data ../shared/data [--out runs/ocr_v221.pt]

The shipped graph holds every convolution with its batch norm folded in: the weights of the inner ones as
uint8 with zero point 128 and a per-channel scale (picar/train/int8.py), their biases as int32 with their
own scale, the stem and classifier in float. `init_from_onnx` dequantises them into the torch layers in
graph order. A folded batch norm alone would make the training-mode network (which normalises by batch
statistics) unlike the shipped one, so each batch norm gets the running statistics of its input on real
crops and an affine part that gives back the folded output exactly: eval mode computes the float version
of the shipped model, and training starts from a network whose batch statistics are close to its running
ones. The command writes a checkpoint that `train_ocr --init` takes and reports how closely the float
network agrees with the int8 one on the real val crops (argmax per frame, decoded text).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from picar.train.ocr_model import INPUT_HEIGHT, INPUT_WIDTH, build_model


def _dequantize(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> np.ndarray:
    q = inits[node.input[0]].astype(np.float64)
    scale = inits[node.input[1]].astype(np.float64)
    zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros_like(scale)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:  # per channel along `axis`
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale).astype(np.float32)


def conv_tensors(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of every Conv of the graph in execution order, dequantised to float32."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    produced = {out: n for n in model.graph.node if n.op_type == "DequantizeLinear" for out in n.output}

    def value(name: str) -> np.ndarray:
        if name in inits:
            return inits[name].astype(np.float32)
        if name in produced and produced[name].input[0] in inits:
            return _dequantize(produced[name], inits)
        raise ValueError(f"{path}: convolution input {name!r} is neither an initializer nor a dequantised one")

    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            out.append((value(node.input[1]), value(node.input[2]) if len(node.input) > 2 else None))
    return out


def _conv_slots(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """The network's convolutions in forward order, each with the batch norm right after it (or None)."""
    mods = list(model.modules())
    slots: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            slots.append((m, nxt if isinstance(nxt, nn.BatchNorm2d) else None))
    return slots


def init_from_onnx(model: nn.Module, path: Path, batches: list[torch.Tensor] | None = None) -> int:
    """Load the ONNX model's (dequantised, folded) convolutions into `model` (same layers); with `batches`
    of uint8 NHWC inputs, set every batch norm's running statistics to those of its input on them while
    keeping the eval-mode output unchanged. Returns how many convolutions were loaded; raises ValueError
    naming the first that does not fit."""
    tensors = conv_tensors(path)
    slots = _conv_slots(model)
    if len(tensors) != len(slots):
        raise ValueError(f"{path} has {len(tensors)} convolutions, the network {len(slots)}: not the same layers")
    for k, ((conv, bn), (w, b)) in enumerate(zip(slots, tensors, strict=True)):
        _load_conv(conv, bn, w, b, f"convolution {k}")
    if batches:
        _restat(model, [(bn, conv) for conv, bn in slots if bn is not None], batches)
    return len(slots)


@torch.no_grad()
def _load_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, w: np.ndarray, b: np.ndarray | None, what: str) -> None:
    """A folded ONNX convolution into a torch convolution and the batch norm after it (or its own bias)."""
    if tuple(conv.weight.shape) != w.shape:
        raise ValueError(f"{what}: ONNX weight {w.shape} != torch {tuple(conv.weight.shape)}")
    conv.weight.copy_(torch.from_numpy(w))
    bias = torch.from_numpy(b) if b is not None else torch.zeros(w.shape[0])
    if bn is None:
        if conv.bias is None:
            raise ValueError(f"{what} has an ONNX bias but neither a bias nor a batch norm")
        conv.bias.copy_(bias)
        return
    # Identity batch norm plus the folded bias: (x - 0) / sqrt(1 - eps + eps) * 1 + bias.
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.fill_(1.0)
    bn.bias.copy_(bias)


def _scope(path: str) -> str:
    """The ONNX node scope torch's exporter gives the module at `path` (`s4.0.dw.0` -> `/s4/s4.0/dw/dw.0`):
    a Sequential's numbered child carries its parent's name."""
    parts: list[str] = []
    for name in path.split("."):
        parts.append(f"{parts[-1]}.{name}" if name.isdigit() and parts else name)
    return "/" + "/".join(parts)


def init_named_from_onnx(model: nn.Module, path: Path, batches: list[torch.Tensor] | None = None) -> int:
    """`init_from_onnx` for a network whose convolutions do not run in the order they are declared (the
    detector's top-down path): each ONNX Conv goes to the torch module its node name records. Raises
    ValueError when a convolution is missing on either side or does not fit."""
    graph = onnx.load(str(path))
    tensors = dict(zip([n.name for n in graph.graph.node if n.op_type == "Conv"], conv_tensors(path), strict=True))
    slots = _conv_slots(model)
    paths = {id(m): name for name, m in model.named_modules()}
    pairs = []
    for conv, bn in slots:
        node = _scope(paths[id(conv)]) + "/Conv"
        if node not in tensors:
            raise ValueError(f"{path} has no convolution {node} (module {paths[id(conv)]})")
        w, b = tensors.pop(node)
        _load_conv(conv, bn, w, b, node)
        pairs.append((conv, bn))
    if tensors:
        raise ValueError(f"{path} has convolutions the network lacks: {sorted(tensors)}")
    if batches:
        _restat(model, [(bn, conv) for conv, bn in pairs if bn is not None], batches)
    return len(pairs)


def _restat(model: nn.Module, pairs: list[tuple[nn.BatchNorm2d, nn.Conv2d]], batches: list[torch.Tensor]) -> None:
    sums: dict[int, list[torch.Tensor]] = {id(bn): [torch.zeros(bn.num_features, dtype=torch.float64)] * 2 + [
        torch.zeros((), dtype=torch.float64)] for bn, _ in pairs}
    hooks = []
    for bn, _ in pairs:
        def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            x = inp[0].detach().double()
            s = sums[id(mod)]
            s[0] = s[0] + x.sum(dim=(0, 2, 3))
            s[1] = s[1] + x.pow(2).sum(dim=(0, 2, 3))
            s[2] = s[2] + x.shape[0] * x.shape[2] * x.shape[3]
        hooks.append(bn.register_forward_hook(hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.train(was)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for bn, _ in pairs:
            total, sq, n = sums[id(bn)]
            mean = total / n
            var = (sq / n - mean.pow(2)).clamp_min(1e-6)
            # eval output stays x + bias: (x - m) / sqrt(v + eps) * sqrt(v + eps) + (bias + m)
            bn.bias.add_(mean.float())
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())


def agreement(model: nn.Module, path: Path, x: np.ndarray, batch: int = 64) -> dict[str, float]:
    """How the torch model (eval) and the ONNX model agree on uint8 inputs `x` (N, H, W, 1): the share
    of frames with the same best class, and the largest probability difference."""
    from picar.train.onnx_tools import _session

    sess = _session(path)
    name = sess.get_inputs()[0].name
    model.eval()
    same, frames, worst = 0, 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            part = x[i: i + batch]
            ref = sess.run(None, {name: part})[0]
            got = model(torch.from_numpy(part)).numpy()
            same += int((ref.argmax(-1) == got.argmax(-1)).sum())
            frames += ref.shape[0] * ref.shape[1]
            worst = max(worst, float(np.abs(ref - got).max()))
    return {"frames": float(frames), "same_argmax": same / frames, "max_abs_prob_diff": worst}


def main(argv: list[str] | None = None) -> int:
    from picar.train.ocr_data import TRAIN_WEIGHTS, load_real
    from picar.train.real_crops import REAL_SETS
    from picar.vision.ocr import preprocess

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, default=Path("runs/ocr_from_onnx.pt"))
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--columns", type=int, default=32)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    side = json.loads(args.onnx.with_suffix(".json").read_text())
    model = build_model("ctc", args.width, args.columns)
    train = [c.image for name in TRAIN_WEIGHTS for c in load_real(args.data, name, "train")][::4]
    x_train = preprocess(train, INPUT_HEIGHT, INPUT_WIDTH, 1)
    n = init_from_onnx(model, args.onnx, [torch.from_numpy(x_train[i: i + 64]) for i in range(0, len(x_train), 64)])
    val = [c.image for name in REAL_SETS for c in load_real(args.data, name, "val")]
    report: dict[str, Any] = {"onnx": str(args.onnx), "version": side.get("version"), "convolutions": n,
                              "restat_crops": len(train),
                              "val": agreement(model, args.onnx, preprocess(val, INPUT_HEIGHT, INPUT_WIDTH, 1))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    margs = {"head": "ctc", "width": args.width, "columns": args.columns, "upsample": False, "seed": 0}
    torch.save({"weights": model.state_dict(), "epoch": f"from {args.onnx.name} {side.get('version')}",
                "args": margs, "val": {}, "mean": None}, args.out)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
