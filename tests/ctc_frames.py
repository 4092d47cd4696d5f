"""Hand-made CTC frames and reads decoded from them with the real decode, for the decode, vote and
tracker tests: every read they make went through `picar.vision.ctc_grammar.search`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from picar.types import OcrResult
from picar.vision.automaton import compile_region
from picar.vision.grammar import grammars_for
from picar.vision.ocr import decode
from picar.vision.priors import GrammarPriors

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK = len(ALPHABET)
# Flat priors at a fixed scale: the tests do not move when the fitted priors beside the model do.
PRIORS = replace(GrammarPriors.uninformed(), scale=0.5, char_bonus=1.5)


def frames(*spec: dict[str, float] | None) -> np.ndarray:
    """One CTC frame per item: {char: probability}, the rest of the mass on the blank; None = sure blank."""
    out = np.zeros((len(spec), BLANK + 1))
    for t, item in enumerate(spec):
        for ch, p in (item or {}).items():
            out[t, ALPHABET.index(ch)] = p
        out[t, BLANK] = max(0.0, 1.0 - out[t, :BLANK].sum())
    return out


def spelled(text: str, conf: float = 0.95, weak: dict[int, tuple[str, float]] | None = None,
            faint: dict[int, tuple[str, float]] | None = None) -> np.ndarray:
    """Frames spelling `text`: each character one frame at `conf` (or shared with a runner-up in `weak`),
    blanks between; `faint` puts a frame where a character nearly showed (below the blank) before position i."""
    weak = weak or {}
    faint = faint or {}
    spec: list[dict[str, float] | None] = [None]
    for i, c in enumerate(text):
        if i in faint:
            spec += [{faint[i][0]: faint[i][1]}, None]
        if i in weak:
            alt, p = weak[i]
            spec.append({c: conf - p, alt: p})
        else:
            spec.append({c: conf})
        spec.append(None)
    return frames(*spec)


def read(probs: np.ndarray, region: str | Sequence[str] | None = None,
         frames_per_row: int | None = None, priors: GrammarPriors = PRIORS) -> OcrResult:
    """The decode's read of hand-made frames, with `region`'s grammars (None: free text only)."""
    names = () if region is None else ((region,) if isinstance(region, str) else tuple(region))
    automaton = compile_region(grammars_for(names) if names else (), names, ALPHABET, priors)
    return decode(probs[None], ALPHABET, "_", decoder="ctc", frames_per_row=frames_per_row,
                  automaton=automaton)[0]
