"""Per-region plate grammars: the read that fits the region's formats, where the model allows it.

O and 0, I and 1, B and 8 are often told apart only by the national format. With the OCR's frame
probabilities at hand (`fit_region`, used by `PlateOcr.read(crops, region)`), the most probable reading
that fits a format is searched for (`picar.vision.ctc_grammar`) and replaces a read that fits none when
the model gives it enough probability. Without them (a fixed-slot model), `apply_region` re-ranks the
candidates and swaps look-alikes where a template needs a digit or a letter. The raw read always stays
among the candidates.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import replace
from functools import lru_cache

import numpy as np

from picar.types import CharRead, OcrResult
from picar.vision.ctc_grammar import best_fitting, template_masks

_SETS = {"L": string.ascii_uppercase, "D": string.digits, "A": string.ascii_uppercase + string.digits}

# Templates: L letter, D digit, A either; [XYZ] a set of letters. One template per line of a format.
_UA = "[ABCEHIKMOPTX]"
REGION_TEMPLATES: dict[str, tuple[str, ...]] = {
    # Moldova: ABC 123; older regional C AB 123 / CH AB 123
    "md": ("LLLDDD", "LLLLDDD"),
    # Romania: B 12 ABC, B 123 ABC, CJ 07 XYZ; temporary: county + 6 digits
    "ro": ("LDDLLL", "LDDDLLL", "LLDDLLL", "LDDDDDD", "LLDDDDDD"),
    # Ukraine: AA 1234 BB (Cyrillic letters that look Latin)
    "ua": (f"{_UA}{_UA}DDDD{_UA}{_UA}",),
    # Poland: 2-3 letter district, then digits / letters
    "pl": ("LLDDDDD", "LLDDDLL", "LLDLDDD", "LLLDDDD", "LLLDDLL", "LLLDLDD", "LLLLDDD", "LLDDDDL"),
    # Germany: district, 1-2 letters, 1-4 digits (the split between district and letters is not read)
    "de": tuple("L" * n + "D" * d for n in (2, 3, 4, 5) for d in (1, 2, 3, 4) if n + d <= 8),
    # Turkey: two-digit province, 1-3 letters, 2-5 digits (34 A 1234, 06 AB 123, 07 ABC 12)
    "tr": ("DDLDDDD", "DDLDDDDD", "DDLLDDD", "DDLLDDDD", "DDLLLDD", "DDLLLDDD"),
    # Brazil: old ABC-1234, Mercosur ABC1D23
    "br": ("LLLDDDD", "LLLDLDD"),
    # Argentina: old ABC 123, Mercosur AB 123 CD, motorbike A 123 BCD
    "ar": ("LLLDDD", "LLDDDLL", "LDDDLLL"),
    # US: the common issued patterns; vanity plates match none and keep their raw read
    "us": ("LLLDDDD", "DLLLDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DDDDLL", "LLLLDDD", "DLLDDD", "LLDLDDD",
           "DDLLDD", "LDDLLL", "DDDDDD", "LLDDDD", "DDDLDD", "LLLDDDL", "DLDDDD"),
}
REGION_TEMPLATES["eu"] = tuple(dict.fromkeys(
    REGION_TEMPLATES["md"] + REGION_TEMPLATES["ro"] + REGION_TEMPLATES["ua"] + REGION_TEMPLATES["pl"]
    + REGION_TEMPLATES["de"] + REGION_TEMPLATES["tr"] + (
        "LLDDDLL",  # FR AB-123-CD, IT AB 123 CD
        "DDDDLLL",  # ES 1234 ABC
        "LLDDDDLL",  # BG CA 1234 AB
        "LLDDDDL",
        "LLLDDD",  # HU ABC-123, SE ABC 123, LT
        "LLLDDL",  # SE ABC 12A
        "DLLDDDD",  # CZ 1AB 2345
        "LLDDDLL", "LLDDDDD",  # SK RK-099AN, NO AB 12345
        "LLDDLLL", "LLDDLL",  # GB AB12 CDE, HR
        "LLDDDD", "DDDLLL", "LLLLDD", "DDLLLD", "LDDDLL", "LLDDLD",  # NL sidecodes and others
    )))
REGION_TEMPLATES["auto"] = tuple(dict.fromkeys(t for k in ("eu", "us", "br", "ar") for t in REGION_TEMPLATES[k]))
REGIONS: tuple[str, ...] = tuple(sorted(REGION_TEMPLATES))

# What a letter most often really is where a digit must be, and the reverse.
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "T": "1", "J": "1", "Z": "2",
            "E": "3", "A": "4", "S": "5", "G": "6", "B": "8", "R": "8"}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "3": "B", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B"}
# How far below the raw read's confidence a format-fitting candidate may score and still replace it.
# Where every plate fits a national format the grammar is trusted fully; where vanity plates and many
# local formats exist (US, Europe at large) it only breaks near-ties: promoting any fitting candidate
# there cost 17 points of exact accuracy on the US val crops and 16 on the EU ones (models/README.ocr.md).
PROMOTE_RATIO = {"br": 0.0, "ar": 0.0, "ro": 0.0, "md": 0.0, "ua": 0.0, "tr": 0.0, "de": 0.2, "pl": 0.2, "eu": 0.2,
                 "us": 0.5, "auto": 0.5}
# The same rule for `fit_region`, on the model's path probabilities: the best fitting path may be this
# much less probable than the raw read's (measured on the val crops, models/README.ocr.md). Below
# GRAMMAR_FLOOR no region takes it: the plate is most likely from somewhere else (a foreign car).
GRAMMAR_RATIO = {"br": 0.0, "ar": 0.0, "ro": 0.0, "md": 0.0, "ua": 0.0, "tr": 0.0, "de": 0.2, "pl": 0.2, "eu": 0.2,
                 "us": 0.2, "auto": 0.2}
GRAMMAR_FLOOR = 1e-4
LOOKALIKE_COST = 0.15  # confidence factor of a swap the OCR itself did not offer
MAX_SWAPS = 2


def _parse(template: str) -> tuple[frozenset[str], ...]:
    sets: list[frozenset[str]] = []
    for m in re.finditer(r"\[([A-Z0-9]+)\]|([LDA])", template):
        sets.append(frozenset(m.group(1) if m.group(1) else _SETS[m.group(2)]))
    return tuple(sets)


_PARSED = {region: tuple(_parse(t) for t in temps) for region, temps in REGION_TEMPLATES.items()}


def _check_region(region: str) -> str:
    key = region.lower()
    if key not in _PARSED:
        raise ValueError(f"unknown plate region {region!r}; allowed regions: {', '.join(REGIONS)}")
    return key


def matches(text: str, region: str) -> bool:
    """Whether `text` (A-Z0-9, no separators) fits one of `region`'s formats."""
    key = _check_region(region)
    return any(len(t) == len(text) and all(c in s for c, s in zip(text, t, strict=True)) for t in _PARSED[key])


def _conform(text: str, template: tuple[frozenset[str], ...], chars: tuple[CharRead, ...] | None
             ) -> tuple[str, float, list[tuple[int, str, float]]] | None:
    """Fit `text` to `template` with at most MAX_SWAPS swaps: (text, confidence factor, swaps)."""
    out, factor, swaps = [], 1.0, []
    for i, (c, allowed) in enumerate(zip(text, template, strict=True)):
        if c in allowed:
            out.append(c)
            continue
        best: tuple[str, float] | None = None
        if chars is not None:
            for alt, p in chars[i].alternatives:
                if alt in allowed:
                    best = (alt, p / max(chars[i].confidence, 1e-6))
                    break
        if best is None:
            look = TO_DIGIT.get(c) if c.isalpha() else TO_LETTER.get(c)
            if look is None or look not in allowed:
                return None
            best = (look, LOOKALIKE_COST)
        out.append(best[0])
        factor *= min(best[1], 1.0)
        swaps.append((i, best[0], best[1]))
        if len(swaps) > MAX_SWAPS:
            return None
    return "".join(out), factor, swaps


def apply_region(result: OcrResult, region: str) -> OcrResult:
    """Re-rank `result.candidates` so texts valid in `region` come first (best confidence first), with
    look-alike corrections proposed where a format demands a digit or a letter. Raw texts that fit no
    format follow; the raw read is never dropped. Raises ValueError for an unknown region."""
    key = _check_region(region)
    pool = list(result.candidates) or ([(result.text, result.confidence)] if result.text else [])
    if result.text and all(t != result.text for t, _ in pool):
        pool.insert(0, (result.text, result.confidence))
    valid: dict[str, float] = {}
    fixed_chars: dict[str, tuple[CharRead, ...]] = {}
    for text, conf in pool:
        aligned = result.chars if len(result.chars) == len(text) else None
        for template in _PARSED[key]:
            if len(template) != len(text):
                continue
            fit = _conform(text, template, aligned)
            if fit is None:
                continue
            new_text, factor, swaps = fit
            score = conf * factor
            if score > valid.get(new_text, -1.0):
                valid[new_text] = score
                if aligned is not None:
                    swapped = list(_chars_for(text, aligned, conf))
                    for i, ch, f in swaps:
                        swapped[i] = CharRead(ch, min(1.0, swapped[i].confidence * f),
                                              tuple((a, p) for a, p in swapped[i].alternatives if a != ch))
                    fixed_chars[new_text] = tuple(swapped)
    ranked = sorted(valid.items(), key=lambda t: -t[1])
    rest = sorted(((t, c) for t, c in pool if t not in valid), key=lambda t: -t[1])
    limit = max(8, len(pool))
    candidates = (ranked + rest)[:limit]
    if result.text and all(t != result.text for t, _ in candidates):
        candidates[-1] = (result.text, result.confidence)
    if not candidates:
        return result
    if (result.text and candidates[0][0] != result.text
            and candidates[0][1] < PROMOTE_RATIO[key] * result.confidence):
        candidates = [(result.text, result.confidence)] + [c for c in candidates if c[0] != result.text]
    top, conf = candidates[0]
    chars = result.chars if top == result.text else fixed_chars.get(top) or _chars_for(top, result.chars, conf)
    return replace(result, text=top, confidence=conf, chars=chars, candidates=tuple(candidates))


def _chars_for(text: str, raw: tuple[CharRead, ...], confidence: float) -> tuple[CharRead, ...]:
    """Characters that spell `text`: the raw read's where they agree (same length), otherwise the raw
    character's alternative probability, or an even share of `confidence`; the raw character becomes
    an alternative. The tracker votes these characters, so they must spell the chosen text."""
    even = confidence ** (1 / max(1, len(text)))
    if len(raw) != len(text):
        return tuple(CharRead(c, even) for c in text)
    out = []
    for c, r in zip(text, raw, strict=True):
        if c == r.char:
            out.append(r)
            continue
        p = next((q for a, q in r.alternatives if a == c), even)
        out.append(CharRead(c, p, ((r.char, r.confidence),)))
    return tuple(out)


@lru_cache(maxsize=256)
def _masks(region: str, alphabet: str, near: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Masks of `region`'s templates at most one character longer or shorter than `near` (a fit that
    adds or drops more pays for it in forced characters and never wins); None if there are none."""
    temps = [t for t in _PARSED[region] if abs(len(t) - near) <= 1]
    return template_masks(temps, alphabet) if temps else None


def _rows_used(probs: np.ndarray, frames_per_row: int) -> int:
    """How many rows of frames the greedy read's characters come from (frames are read row by row)."""
    best = np.argmax(probs, axis=1)
    return len({int(t) // frames_per_row for t in np.flatnonzero(best != probs.shape[1] - 1)})


# Regions whose plates record a round letter-like glyph as 0 (most US states draw O and 0 alike, and the
# US labels write 314 zeros to 16 letter Os): there the top line of a two-row plate is left as read.
ZERO_REGIONS = frozenset({"us"})


def greedy_path(probs: np.ndarray) -> list[tuple[int, int]]:
    """(frame, class) of every character of the greedy CTC read of one plate's frames (N frames x
    classes, blank last), in reading order: runs collapse, blanks drop."""
    best = np.argmax(probs, axis=1)
    starts = np.flatnonzero((best != probs.shape[1] - 1) & np.concatenate(([True], best[1:] != best[:-1])))
    return [(int(t), int(best[t])) for t in starts]


def _greedy_rows(probs: np.ndarray, frames_per_row: int) -> list[int]:
    """The frame row of every character of the greedy read, in reading order (runs collapse, blanks drop)."""
    return [t // frames_per_row for t, _ in greedy_path(probs)]


def settle_top_line(result: OcrResult, probs: np.ndarray, frames_per_row: int) -> OcrResult:
    """On a two-row read, a 0 on a top line that is otherwise all letters becomes O.

    The top line of a two-row European plate is the district or series code. In the EU two-row crops
    (train and val) a round glyph among letters there is the letter O 15 times and the digit 0 twice
    (Polish L0RAFI, IS06219), while the model, taught by US plates that record round glyphs as
    0, reads clean Os there as 0 with 0.99 confidence. The 0 stays as the character's alternative and
    the raw text among the candidates. `result` must be the greedy read of `probs` (as `decode` gives).
    """
    if "0" not in result.text:
        return result
    rows = _greedy_rows(probs, frames_per_row)
    if len(rows) != len(result.chars) or len(set(rows)) < 2:
        return result
    top = [i for i, r in enumerate(rows) if r == rows[0]]
    others = [result.chars[i].char for i in top if result.chars[i].char != "0"]
    if not others or not all(c.isalpha() for c in others) or len(others) == len(top):
        return result
    return _swapped(result, {i: "O" for i in top if result.chars[i].char == "0"})


# A letter that no registration puts after a digit run at its end, nor (O) between two digits. I and O
# are left out of most series because they look like 1 and 0; across all 2,818 labels in the shared
# data (US, EU, BR, RO, AR, TR) neither appears there, against 572 ones and 521 zeros. An I between
# digits is left alone: Brazil's Mercosur plates put I (an old 8) in the fifth place, ABC1I23.
_DIGIT_RUN_LETTERS = {"I": "1", "O": "0"}


def settle_digit_run(result: OcrResult) -> OcrResult:
    """A final I or O after two or more digits becomes 1 or 0, and an O between two digits becomes 0.

    The letter stays as the character's alternative and the raw text among the candidates."""
    t = result.text
    if len(t) != len(result.chars):
        return result
    swaps = {}
    last = len(t) - 1
    if last >= 2 and t[last] in _DIGIT_RUN_LETTERS and t[last - 2: last].isdigit():
        swaps[last] = _DIGIT_RUN_LETTERS[t[last]]
    for i in range(1, last):
        if t[i] == "O" and t[i - 1].isdigit() and t[i + 1].isdigit():
            swaps[i] = "0"
    return _swapped(result, swaps) if swaps else result


def _swapped(result: OcrResult, swaps: dict[int, str]) -> OcrResult:
    """`result` with the characters at `swaps`' positions replaced; each replaced character becomes
    the new one's first alternative, and the raw text stays among the candidates."""
    chars = list(result.chars)
    for i, new in swaps.items():
        c = chars[i]
        alts = ((c.char, c.confidence), *[a for a in c.alternatives if a[0] not in (c.char, new)])
        chars[i] = CharRead(new, c.confidence, alts)
    text = "".join(c.char for c in chars)
    rest = [c for c in result.candidates if c[0] != text]
    candidates = ((text, result.confidence), *rest)[: max(8, len(result.candidates))]
    return replace(result, text=text, chars=tuple(chars), candidates=candidates)


def fit_region(result: OcrResult, probs: np.ndarray, region: str, alphabet: str,
               frames_per_row: int | None = None) -> OcrResult:
    """The read of one crop fitted to `region`'s formats, from its CTC frame probabilities `probs`
    [frames, len(alphabet) + 1]. A read that fits already is returned as it is. Otherwise the most
    probable fitting reading replaces it when its path is at least GRAMMAR_RATIO (and GRAMMAR_FLOOR)
    as probable as the raw read's; either way the fitting readings join the candidates after the top
    text and the raw read is kept. With `frames_per_row`, an open region (ratio > 0) leaves a two-row
    read alone: its one-row templates fit the many two-row layouts by chance (models/README.ocr.md).
    Raises ValueError for an unknown region."""
    key = _check_region(region)
    if not result.text or matches(result.text, key):
        return result
    if frames_per_row and GRAMMAR_RATIO[key] > 0 and _rows_used(probs, frames_per_row) > 1:
        return result
    masks = _masks(key, alphabet, len(result.text))
    reads = best_fitting(probs, *masks, alphabet) if masks is not None else []
    if not reads:
        return result
    best = reads[0]
    fitted = [(r.text, result.confidence * math.exp(r.log_cost)) for r in reads]
    limit = max(8, len(result.candidates))
    if best.log_cost < math.log(max(GRAMMAR_RATIO[key], GRAMMAR_FLOOR)):
        rest = [c for c in result.candidates if c[0] not in {t for t, _ in fitted}]
        return replace(result, candidates=tuple((rest[:1] + fitted + rest[1:])[:limit]))
    conf = float(np.prod([c.confidence for c in best.chars]))
    others = [(r.text, conf * math.exp(r.log_cost - best.log_cost)) for r in reads[1:]]
    raw = [c for c in result.candidates if c[0] not in {r.text for r in reads}] or [(result.text, result.confidence)]
    candidates = ((best.text, conf), *others, *raw)[:limit]
    if all(t != result.text for t, _ in candidates):
        candidates = (*candidates[: limit - 1], (result.text, result.confidence))
    return replace(result, text=best.text, confidence=conf, chars=best.chars, candidates=tuple(candidates))
