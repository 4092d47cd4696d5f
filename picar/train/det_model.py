"""A tiny fully-convolutional plate detector (CenterNet/TTFNet-like, one class).

The network reads a uint8 NHWC BGR image (so the runtime only resizes and pads), and writes two maps at
stride 4: `scores` (plate-centre probability, already suppressed to local 3x3 maxima) and `boxes`
(x1, y1, x2, y2 in input pixels for a plate centred at that cell). Decoding is then a threshold and a
gather in numpy. Being fully convolutional, it trains on small crops and runs at any input size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 4
MAX_LOG_DIST = 6.0  # exp(6) * 4 px = 1600 px: larger than any plate at the input sizes used


def _conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Block(nn.Module):
    """Depthwise k x k then pointwise 1x1; residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3) -> None:
        super().__init__()
        self.dw = _conv_bn(cin, cin, k, stride, groups=cin, act=False)
        self.pw = _conv_bn(cin, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


# stem, stride 4, 8, 16, and the top-down path's width: the shipped detector's
DEFAULT_CHANNELS = (16, 24, 64, 128, 40)


class PlateNet(nn.Module):
    """Backbone to stride 16, a light top-down path back to stride 4, and a shared head."""

    def __init__(self, channels: tuple[int, int, int, int, int] = DEFAULT_CHANNELS) -> None:
        super().__init__()
        self.channels = tuple(channels)
        c1, c2, c3, c4, ch = channels
        self.stem = _conv_bn(3, c1, 3, 2)  # /2
        self.s4 = nn.Sequential(_Block(c1, c2, 2), _Block(c2, c2))  # /4
        self.s8 = nn.Sequential(_Block(c2, c3, 2, k=5), _Block(c3, c3, k=5))  # /8
        self.s16 = nn.Sequential(_Block(c3, c4, 2, k=5), _Block(c4, c4, k=5), _Block(c4, c4, k=5))  # /16
        self.lat16 = _conv_bn(c4, ch, 1)
        self.lat8 = _conv_bn(c3, ch, 1)
        self.lat4 = _conv_bn(c2, ch, 1)
        self.fuse8 = _Block(ch, ch, k=5)
        self.fuse4 = _Block(ch, ch)
        self.head = _conv_bn(ch, ch, 3, groups=ch, act=True)
        self.heat = nn.Conv2d(ch, 1, 1)
        self.dist = nn.Conv2d(ch, 4, 1)
        nn.init.constant_(self.heat.bias, -4.6)  # prior 0.01: focal loss starts stable
        nn.init.constant_(self.dist.bias, 1.0)
        self.folded = False
        self.register_buffer("mean", torch.tensor([0.406, 0.456, 0.485]).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor([0.225, 0.224, 0.229]).view(1, 3, 1, 1) * 255.0))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float NCHW BGR in; (heat logits, log distances) at stride 4 out."""
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        p = self.lat16(f16)
        p = self.fuse8(self.lat8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.fuse4(self.lat4(f4) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.head(p)
        return self.heat(p), self.dist(p)

    def normalise(self, image_nhwc_u8: torch.Tensor) -> torch.Tensor:
        x = image_nhwc_u8.permute(0, 3, 1, 2).float()
        return x - self.mean if self.folded else (x - self.mean) * self.inv_std

    @torch.no_grad()
    def fold_input_normalisation(self) -> None:
        """For deployment: move the `* inv_std` of the normalisation into the stem convolution's
        weights, so the graph skips one full-resolution element-wise op. The mean stays a subtraction
        so the stem's zero padding still means "average colour": the outputs are unchanged."""
        if self.folded:
            return
        conv = self.stem[0]
        assert isinstance(conv, nn.Conv2d) and conv.bias is None
        conv.weight.mul_(self.inv_std.view(1, 3, 1, 1))
        self.folded = True

    @torch.no_grad()
    def unfold_input_normalisation(self) -> None:
        """The inverse of `fold_input_normalisation`: for training on from a shipped (folded) model."""
        if not self.folded:
            return
        conv = self.stem[0]
        assert isinstance(conv, nn.Conv2d) and conv.bias is None
        conv.weight.div_(self.inv_std.view(1, 3, 1, 1))
        self.folded = False

    def forward(self, image_nhwc_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deployment graph: uint8 NHWC BGR in; (scores N1HW at peaks, boxes N4HW x1y1x2y2 input px)."""
        logits, logd = self.features(self.normalise(image_nhwc_u8))
        heat = torch.sigmoid(logits)
        peaks = F.max_pool2d(heat, 3, 1, 1)
        scores = heat * (heat >= peaks).to(heat.dtype)
        return scores, distances_to_boxes(logd)


# Which width (index into the channels tuple) each convolution's output and input channels belong to; None:
# fixed (the 3 colours, the 1 + 4 outputs) or depthwise (one filter per channel, nothing to cut on its input).
# Residual blocks keep their stream's channels, so a stream is cut alike in every layer that carries it.
_STREAMS: dict[str, tuple[int | None, int | None]] = {
    "stem.0": (0, None),
    "s4.0.dw.0": (0, None), "s4.0.pw.0": (1, 0), "s4.1.dw.0": (1, None), "s4.1.pw.0": (1, 1),
    "s8.0.dw.0": (1, None), "s8.0.pw.0": (2, 1), "s8.1.dw.0": (2, None), "s8.1.pw.0": (2, 2),
    "s16.0.dw.0": (2, None), "s16.0.pw.0": (3, 2), "s16.1.dw.0": (3, None), "s16.1.pw.0": (3, 3),
    "s16.2.dw.0": (3, None), "s16.2.pw.0": (3, 3),
    "lat16.0": (4, 3), "lat8.0": (4, 2), "lat4.0": (4, 1),
    "fuse8.dw.0": (4, None), "fuse8.pw.0": (4, 4), "fuse4.dw.0": (4, None), "fuse4.pw.0": (4, 4),
    "head.0": (4, None), "heat": (None, 4), "dist": (None, 4),
}


def _kept(model: PlateNet, widths: tuple[int, int, int, int, int]) -> list[torch.Tensor]:
    """For each width, the channels of `model` to keep (ascending): those whose filters and whose uses
    weigh most (the L1 norm of the weights writing a channel times that of the weights reading it)."""
    convs = dict(model.named_modules())
    write = [torch.zeros(n) for n in model.channels]
    read = [torch.zeros(n) for n in model.channels]
    with torch.no_grad():
        for name, (out, inp) in _STREAMS.items():
            w = convs[name].weight.abs()  # type: ignore[union-attr]
            if out is not None:
                write[out] += w.sum(dim=(1, 2, 3))
            if inp is not None:
                read[inp] += w.sum(dim=(0, 2, 3))
    return [torch.sort(torch.argsort(wr * (rd + 1e-12), descending=True)[:n]).values
            for wr, rd, n in zip(write, read, widths, strict=True)]


def narrowed(model: PlateNet, widths: tuple[int, int, int, int, int]) -> PlateNet:
    """A copy of `model` with each width cut to `widths` (none wider than the model's): every layer keeps
    the same channels of its stream (`_kept`); its batch norms keep their statistics, to be measured again
    (`picar.train.onnx_import.restat`) since a layer that lost inputs sees other values. For training a
    slimmer detector on from a shipped one instead of from scratch."""
    if any(n > m or n < 1 for n, m in zip(widths, model.channels, strict=True)):
        raise ValueError(f"widths {widths} must each be between 1 and the model's {model.channels}")
    keep = _kept(model, widths)
    small = PlateNet(widths)
    small.folded = model.folded
    mods = dict(small.named_modules())
    big = dict(model.named_modules())
    with torch.no_grad():
        for name, (out, inp) in _STREAMS.items():
            w, b = big[name].weight, big[name].bias  # type: ignore[union-attr]
            rows = keep[out] if out is not None else torch.arange(w.shape[0])
            cols = keep[inp] if inp is not None else torch.arange(w.shape[1])
            mods[name].weight.copy_(w[rows][:, cols])  # type: ignore[union-attr, operator]
            if b is not None:
                mods[name].bias.copy_(b[rows])  # type: ignore[union-attr, operator]
            bn_name = name[:-1] + "1" if name.endswith(".0") else None
            if bn_name is not None and isinstance(big.get(bn_name), nn.BatchNorm2d):
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    getattr(mods[bn_name], attr).copy_(getattr(big[bn_name], attr)[rows])
    return small


@torch.no_grad()
def recalibrate_batch_norms(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Measure every batch norm's running statistics again on `batches` (uint8 NHWC images), their affine
    parts kept: after `narrowed`, a layer that lost inputs sees other values than its statistics say."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the batches
    was = model.training
    model.train()
    for x in batches:
        model(x)
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    model.train(was)


def distances_to_boxes(logd: torch.Tensor) -> torch.Tensor:
    """(l, t, r, b) log distances in stride units at each cell -> x1y1x2y2 in input pixels."""
    _, _, h, w = logd.shape
    d = torch.exp(logd.clamp(-4.0, MAX_LOG_DIST)) * STRIDE
    ys = (torch.arange(h, dtype=logd.dtype, device=logd.device) + 0.5) * STRIDE
    xs = (torch.arange(w, dtype=logd.dtype, device=logd.device) + 0.5) * STRIDE
    cx = xs.view(1, 1, 1, w)
    cy = ys.view(1, 1, h, 1)
    return torch.cat([cx - d[:, 0:1], cy - d[:, 1:2], cx + d[:, 2:3], cy + d[:, 3:4]], dim=1)


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of the convolutions for one image (what dominates the cost)."""
    total = 0

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += int(out.numel() * k * mod.in_channels // mod.groups)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, height, width, 3, dtype=torch.uint8))
    finally:
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
