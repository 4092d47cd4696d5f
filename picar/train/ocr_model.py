"""Fixed-slot plate OCR network: whole plate in, one character (or pad) per slot out, no segmentation.

Input is a batch of grayscale uint8 images (N, H, W, 1), resized without keeping the aspect so one-row
and two-row plates both fill it; the graph scales to 0..1 itself and ends in a softmax, so the runtime
only resizes and decodes.
"""

from __future__ import annotations

import string

import torch
from torch import nn

ALPHABET = string.digits + string.ascii_uppercase
PAD = "_"
VOCAB = ALPHABET + PAD  # class index = position; pad is the last class
MAX_SLOTS = 10
INPUT_HEIGHT = 64
INPUT_WIDTH = 128


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-image zero mean, unit contrast: plates come dark, washed out, low-contrast grey or inverted
    (IR); batch norm alone cannot undo that per image, and without it training is several times slower."""
    centred = x - x.mean(dim=(1, 2, 3), keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=(1, 2, 3), keepdim=True) + 4e-4)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PlateOcrNet(nn.Module):
    """Small VGG-style backbone, then a dense layer that predicts every slot from the whole plate.

    The dense head sees the full feature map, so it learns where characters sit on both one-row and
    two-row layouts and that state names, slogans and bands carry no registration.
    """

    def __init__(self, slots: int = MAX_SLOTS, classes: int = len(VOCAB), width: int = 32,
                 height: int = INPUT_HEIGHT, in_width: int = INPUT_WIDTH, dropout: float = 0.1) -> None:
        super().__init__()
        self.slots = slots
        self.classes = classes
        c = width
        self.features = nn.Sequential(
            _conv(1, c, stride=2),  # 32x64
            _conv(c, c),
            nn.MaxPool2d(2),  # 16x32
            _conv(c, 2 * c),
            _conv(2 * c, 2 * c),
            nn.MaxPool2d(2),  # 8x16
            _conv(2 * c, 4 * c),
            _conv(4 * c, 4 * c),
            nn.MaxPool2d((2, 2)),  # 4x8
            _conv(4 * c, 4 * c),
            nn.Conv2d(4 * c, c, 1, bias=False),  # squeeze channels before the dense head
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        )
        fh, fw = height // 16, in_width // 16
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c * fh * fw, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, slots * classes),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: float (N, 1, H, W) in 0..1 -> logits (N, slots, classes)."""
        return self.head(self.features(standardize(x))).view(-1, self.slots, self.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: uint8 (N, H, W, 1) as the runtime feeds it -> probabilities (N, slots, classes)."""
        f = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return torch.softmax(self.logits(f), dim=-1)


class PlateOcrCtcNet(nn.Module):
    """Same backbone, read as a sequence: the final 4x16 feature map is flattened row by row (top row
    first) into 64 frames and every frame classifies alphabet + blank, trained with CTC.

    Row-major frames give two-row plates a reading order (upper row, then lower row) while one-row
    plates are read along any row; CTC needs no alignment of characters to slots, so it learns from
    far fewer samples than a dense slot head.
    """

    def __init__(self, classes: int = len(VOCAB), width: int = 32, columns: int = 16,
                 upsample: bool = False) -> None:
        super().__init__()
        if columns not in (16, 32):
            raise ValueError(f"columns must be 16 or 32, got {columns}")
        self.classes = classes
        c = width
        # 32 columns give a long one-row plate about three frames per character, so repeated
        # characters (7777) have room for the blanks between them. Natively (the second pooling halves
        # the height only) stage 3 works on twice the positions; `upsample` keeps stage 3 at 16 columns
        # and doubles the columns before the last convolution, for about a tenth more work than 16.
        # The weights have the same shapes every way.
        native = columns == 32 and not upsample
        self.features = nn.Sequential(
            _conv(1, c, stride=2),  # 32x64
            _conv(c, c),
            nn.MaxPool2d(2),  # 16x32
            _conv(c, 2 * c),
            _conv(2 * c, 2 * c),
            nn.MaxPool2d((2, 1) if native else 2),  # 8x32 or 8x16
            _conv(2 * c, 4 * c),
            _conv(4 * c, 4 * c),
            # 4x32 or 4x16 (one module either way, so checkpoints load across the variants)
            nn.Sequential(nn.MaxPool2d((2, 1)), nn.Upsample(scale_factor=(1, 2), mode="nearest"))
            if columns == 32 and upsample else nn.MaxPool2d((2, 1)),
            _conv(4 * c, 4 * c),
            nn.Dropout2d(0.1),
        )
        self.classifier = nn.Conv2d(4 * c, classes, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: float (N, 1, H, W) in 0..1 -> logits (N, frames, classes), frames row-major."""
        f = self.classifier(self.features(standardize(x)))  # N, C, 4, 16
        return f.permute(0, 2, 3, 1).reshape(f.shape[0], -1, self.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: uint8 (N, H, W, 1) -> per-frame probabilities (N, frames, classes); blank is the last class."""
        f = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return torch.softmax(self.logits(f), dim=-1)


def build_model(head: str, width: int, columns: int = 16, upsample: bool = False) -> nn.Module:
    """`slots` (fixed-slot dense head) or `ctc` (row-major frames, 4 rows of `columns`, CTC)."""
    if head == "slots":
        return PlateOcrNet(width=width)
    if head == "ctc":
        return PlateOcrCtcNet(width=width, columns=columns, upsample=upsample)
    raise ValueError(f"unknown OCR head {head!r}: use 'slots' or 'ctc'")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int = INPUT_HEIGHT, width: int = INPUT_WIDTH) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers), by forward hooks."""
    total = 0

    def conv_hook(mod: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += int(out.numel() // out.shape[0]) * k

    def lin_hook(mod: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Linear)
        total += mod.in_features * mod.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model.logits(torch.zeros(1, 1, height, width))  # type: ignore[operator]
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total


def widen_into(model: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Load a narrower model's `state` into `model` (same layers, more channels) so that it computes
    exactly what the narrow one did: old weights fill the leading channels, the extra channels keep
    their fresh initialisation, and every weight reading an extra input channel into an old output
    starts at zero. Training then grows the extra channels from a working model instead of from
    scratch. Returns how many tensors were widened; raises ValueError naming the first tensor that
    does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) ^ set(state))
    if missing:
        raise ValueError(f"checkpoint and model have different layers: {missing[:4]}")
    widened = 0
    new_state: dict[str, torch.Tensor] = {}
    for name, target in own.items():
        src = state[name]
        if src.dim() != target.dim() or any(s > t for s, t in zip(src.shape, target.shape, strict=True)):
            raise ValueError(f"{name}: checkpoint shape {tuple(src.shape)} does not fit in {tuple(target.shape)}")
        if src.shape == target.shape:
            new_state[name] = src.clone()
            continue
        out = target.clone()
        out[tuple(slice(0, s) for s in src.shape)] = src
        if out.dim() == 4 and src.shape[1] < out.shape[1]:
            out[: src.shape[0], src.shape[1]:] = 0.0  # old outputs ignore the new inputs at first
        new_state[name] = out
        widened += 1
    model.load_state_dict(new_state)
    return widened
