"""Vote one read out of several reads of the same plate: the frames of a track (`picar.pipeline.tracker`)
or the differently cut crops of one still photo (`picar.vision.ocr.PlateOcr.read_voted`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from picar.types import CharRead, OcrResult


def vote_reads(reads: Sequence[OcrResult], max_candidates: int = 8) -> OcrResult:
    """One read from several reads of the same plate, character by character, weighted by
    per-character confidence.

    The length is chosen first (by summed read confidence), then each position takes the character
    with the largest summed probability, counting each read's alternatives too. Empty reads abstain.
    """
    reads = [r for r in reads if r.text]
    if not reads:
        return OcrResult(text="", confidence=0.0, chars=(), candidates=())
    by_len: dict[int, float] = defaultdict(float)
    for r in reads:
        by_len[len(r.chars)] += r.confidence + 1e-6
    length = max(by_len.items(), key=lambda kv: kv[1])[0]
    same = [r for r in reads if len(r.chars) == length]
    n = len(same)
    chars: list[CharRead] = []
    for i in range(length):
        score: dict[str, float] = defaultdict(float)
        for r in same:
            cr = r.chars[i]
            seen = {cr.char}
            score[cr.char] += cr.confidence
            for alt, p in cr.alternatives:
                if alt not in seen:
                    score[alt] += p
                    seen.add(alt)
        ranked = sorted(score.items(), key=lambda kv: -kv[1])
        best, best_score = ranked[0]
        chars.append(
            CharRead(
                char=best,
                confidence=min(1.0, best_score / n),
                alternatives=tuple((c, min(1.0, s / n)) for c, s in ranked[1:4]),
            )
        )
    text = "".join(c.char for c in chars)
    confidence = float(np.prod([c.confidence for c in chars])) if chars else 0.0
    return OcrResult(text=text, confidence=confidence, chars=tuple(chars),
                     candidates=_merge_candidates(text, confidence, chars, reads, max_candidates))


def vote_texts(reads: Sequence[OcrResult], max_candidates: int = 8) -> OcrResult:
    """One read from several reads of the same plate, whole texts at a time: the text with the largest
    summed confidence wins, and its most confident read is returned with the reads' candidates pooled.

    For reads already fitted to a plate format (`picar.vision.formats.fit_region`): each is a valid
    plate, and a per-character mix of two valid plates need not be one. Empty reads abstain.
    """
    reads = [r for r in reads if r.text]
    if not reads:
        return OcrResult(text="", confidence=0.0, chars=(), candidates=())
    score: dict[str, float] = defaultdict(float)
    for r in reads:
        score[r.text] += r.confidence + 1e-6
    text = max(score.items(), key=lambda kv: kv[1])[0]
    best = max((r for r in reads if r.text == text), key=lambda r: r.confidence)
    pooled = _pooled(reads)
    pooled.pop(text, None)
    ranked = sorted(pooled.items(), key=lambda kv: -kv[1])[: max(0, max_candidates - 1)]
    return OcrResult(text=text, confidence=best.confidence, chars=best.chars,
                     candidates=((text, best.confidence), *((t, round(p, 6)) for t, p in ranked)))


def _pooled(reads: list[OcrResult]) -> dict[str, float]:
    """Each candidate text's confidence averaged over the reads (0 where a read lacks it)."""
    pooled: dict[str, float] = defaultdict(float)
    for r in reads:
        for cand, p in r.candidates or ((r.text, r.confidence),):
            pooled[cand] += p / len(reads)
    return pooled


def _merge_candidates(
    text: str, confidence: float, chars: list[CharRead], reads: list[OcrResult], limit: int
) -> tuple[tuple[str, float], ...]:
    pooled = _pooled(reads)
    # Single-character swaps at the least certain positions of the voted text.
    weakest = sorted(range(len(chars)), key=lambda i: chars[i].confidence)[:3]
    for i in weakest:
        for alt, p in chars[i].alternatives[:2]:
            if chars[i].confidence <= 0:
                continue
            swapped = text[:i] + alt + text[i + 1 :]
            pooled[swapped] = max(pooled[swapped], confidence * p / chars[i].confidence)
    pooled.pop(text, None)
    ranked = sorted(pooled.items(), key=lambda kv: -kv[1])[: max(0, limit - 1)]
    return ((text, confidence), *((t, round(p, 6)) for t, p in ranked))
