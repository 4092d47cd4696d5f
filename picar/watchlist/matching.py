"""How a read matches a listed plate: the options, the look-alike classes, and the alignment that
says which characters differ (for the officer to check)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from picar.types import Match
from picar.watchlist.entries import ALPHABET, DEFAULT_CONFUSABLES, MAX_PLATE_LEN, WatchlistError

MASK = (1 << 64) - 1
P = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
P_INV = pow(P, -1, 1 << 64)
MIX = 0xBF58476D1CE4E5B9
ROW_BITS = np.uint64((1 << 24) - 1)
HASH_BITS = np.uint64(MASK ^ ((1 << 24) - 1))
MAX_ENTRIES = (1 << 24) - 1
# Exact and confusable matches are the same plate up to look-alike characters: between them the OCR's
# better candidate wins, so the officer sees what the camera most likely read and which characters to
# check, not a weak candidate that happens to spell the listing. Wildcards and edits rank after them.
KIND_RANK = {"exact": 0, "confusable": 0, "wildcard": 1, "edit": 2}

def mix(h: int) -> int:
    """Finalise a polynomial hash so its high bits (the ones the index keeps) depend on every
    character; the first character alone would only touch the low bits."""
    h = ((h ^ (h >> 31)) * MIX) & MASK
    return h ^ (h >> 29)


def mix_array(h: np.ndarray) -> np.ndarray:
    h = (h ^ (h >> np.uint64(31))) * np.uint64(MIX)
    return h ^ (h >> np.uint64(29))


def column_hashes(codes: np.ndarray) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """Vectorised `Alphabet.full_hash` / `deletion_hashes` for an (n, MAX_PLATE_LEN) array of codes.

    The deletion hashes come one position at a time, so building the index holds one of them, not ten.
    """
    full = np.zeros(codes.shape[0], dtype=np.uint64)
    power = 1
    for i in range(codes.shape[1]):
        full += codes[:, i].astype(np.uint64) * np.uint64(power)
        power = (power * P) & MASK

    def deletions() -> Iterator[np.ndarray]:
        inv = np.uint64(P_INV)
        pre = np.zeros(codes.shape[0], dtype=np.uint64)  # hash of the first k characters
        power = 1
        for k in range(codes.shape[1]):
            nxt = pre + codes[:, k].astype(np.uint64) * np.uint64(power)
            yield mix_array(pre + (full - nxt) * inv)
            pre = nxt
            power = (power * P) & MASK

    return mix_array(full), deletions()


@dataclass(frozen=True)
class MatchOptions:
    """How loose a match may be, per list name (key "default" for the others).

    max_substitutions: confusable-character substitutions allowed (0 = exact only).
    max_edit: non-confusable insert/delete/substitute operations allowed, 0 or 1.
    Wildcards: `?` one character, `*` a run of 0..wildcard_run characters. Which patterns a list may
    hold (their shape and number) is the language's rule (picar.watchlist.entries), not an option.
    Reads and entries shorter than min_fuzzy_length only ever match exactly.
    """

    confusables: tuple[str, ...] = DEFAULT_CONFUSABLES
    max_substitutions: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    max_edit: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    wildcard_run: int = 3
    min_fuzzy_length: int = 4

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for cls in self.confusables:
            for ch in cls:
                if ch not in ALPHABET:
                    raise WatchlistError(f"confusables: {ch!r} in class {cls!r} is not A-Z or 0-9")
                if ch in seen:
                    raise WatchlistError(
                        f"confusables: {ch!r} is in both {seen[ch]!r} and {cls!r}; merge them into one class"
                    )
                seen[ch] = cls
        for name, limits, top in (("max_substitutions", self.max_substitutions, MAX_PLATE_LEN),
                                  ("max_edit", self.max_edit, 1)):
            for key, value in limits.items():
                if not isinstance(value, int) or not 0 <= value <= top:
                    why = " (the index covers one edit; more would match too many plates)" if top == 1 else ""
                    raise WatchlistError(f"{name}[{key!r}] = {value!r}: allowed 0..{top}{why}")
        if self.wildcard_run < 0:
            raise WatchlistError(f"wildcard_run = {self.wildcard_run!r}: allowed >= 0")

    def substitutions_for(self, list_name: str) -> int:
        return self.max_substitutions.get(list_name, self.max_substitutions.get("default", 1))

    def edit_for(self, list_name: str) -> int:
        return self.max_edit.get(list_name, self.max_edit.get("default", 1))


class Alphabet:
    """Canonical codes: confusable characters share one code, codes start at 1 (0 is padding)."""

    def __init__(self, confusables: Sequence[str]) -> None:
        rep = {ch: ch for ch in ALPHABET}
        for cls in confusables:
            for ch in cls:
                rep[ch] = cls[0]
        reps = sorted(set(rep.values()))
        self.code = {ch: reps.index(rep[ch]) + 1 for ch in ALPHABET}
        self.canon = str.maketrans({ch: rep[ch] for ch in ALPHABET})
        lut = np.zeros(256, dtype=np.uint8)
        for ch, c in self.code.items():
            lut[ord(ch)] = c
        self.lut = lut

    def same_class(self, a: str, b: str) -> bool:
        return self.code.get(a, -1) == self.code.get(b, -2)

    def full_hash(self, text: str) -> int:
        """Hash of `text`'s canonical form (the same function `column_hashes` vectorises)."""
        h = 0
        code = self.code
        for ch in reversed(text):
            h = (h * P + code[ch]) & MASK
        return mix(h)

    def deletion_hashes(self, text: str) -> list[int]:
        """Hashes of the canonical form with each one character deleted."""
        code = self.code
        pre = [0]
        power = 1
        for ch in text:
            pre.append((pre[-1] + code[ch] * power) & MASK)
            power = (power * P) & MASK
        full = pre[-1]
        return [mix((pre[p] + (full - pre[p + 1]) * P_INV) & MASK) for p in range(len(text))]



def keep_best(best: dict[int, tuple[tuple[int, int, int, float], Match]], row: int, m: Match,
               conf: float, cand: int) -> None:
    rank = (KIND_RANK[m.kind], cand, len(m.differences), -conf)
    old = best.get(row)
    if old is None or rank < old[0]:
        best[row] = (rank, m)


def align(read: str, listed: str, abc: Alphabet) -> tuple[int, int, list[tuple[int, str, str]]] | None:
    """Align two texts at canonical edit distance <= 1, preferring fewest confusable substitutions.

    Returns (edits, confusable substitutions, differences as (read position, read char, listed
    char), with '' for the missing side of an insertion or deletion), or None if further apart.
    """
    ca, cb = read.translate(abc.canon), listed.translate(abc.canon)
    if len(read) == len(listed):
        hard = [i for i in range(len(ca)) if ca[i] != cb[i]]
        if len(hard) > 1:
            return None
        diffs = [(i, a, b) for i, (a, b) in enumerate(zip(read, listed, strict=True)) if a != b]
        return len(hard), len(diffs) - len(hard), diffs
    long_, short, extra_in_read = (read, listed, True) if len(read) > len(listed) else (listed, read, False)
    cl, cs = (ca, cb) if extra_in_read else (cb, ca)
    if len(cl) != len(cs) + 1:
        return None
    pre = 0
    while pre < len(cs) and cl[pre] == cs[pre]:
        pre += 1
    suf = 0
    while suf < len(cs) and cl[-1 - suf] == cs[-1 - suf]:
        suf += 1
    best: list[tuple[int, str, str]] | None = None
    # Deleting position k of the longer text gives the shorter one for every k in [n - suf, pre].
    for k in range(len(cs) - suf, pre + 1):
        rest = long_[:k] + long_[k + 1:]
        diffs = [(i + (i >= k and extra_in_read), a, b) if extra_in_read else (i, b, a)
                 for i, (a, b) in enumerate(zip(rest, short, strict=True)) if a != b]
        gap = (k, long_[k], "") if extra_in_read else (k, "", long_[k])
        diffs.append(gap)
        diffs.sort()
        if best is None or len(diffs) < len(best):
            best = diffs
    if best is None:
        return None
    return 1, len(best) - 1, best
