"""`NAME=WEIGHT` on a training command line: how often a data folder is sampled."""

from __future__ import annotations

import argparse
from collections.abc import Collection


def named_weight(text: str, known: Collection[str] | None = None, what: str = "NAME") -> tuple[str, float]:
    """Parse `NAME=W` (W >= 0); with `known`, NAME must be one of them. Errors name the bad part."""
    name, sep, value = text.partition("=")
    if not sep or not name or (known is not None and name not in known):
        choices = f" with {what} one of {', '.join(known)}" if known is not None else ""
        raise argparse.ArgumentTypeError(f"expected {what}=WEIGHT{choices}, got {text!r}")
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight of {name} must be a number, got {value!r}") from None
    if weight < 0:
        raise argparse.ArgumentTypeError(f"weight of {name} must be >= 0, got {weight}")
    return name, weight
