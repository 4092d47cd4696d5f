"""One read out of several reads of the same plate: the frames of a track (`picar.pipeline.tracker`) or
the differently cut crops of one still photo (`picar.vision.ocr.PlateOcr.read_voted`).

Every text any read found is scored on every read: the log probability of its best path through that
read's frames (the model's own, `picar.vision.ctc_grammar.score_texts`; taken from the read's own
candidates where it is one of them), summed over the reads, and the grammar's prior for the text. The
reads of one plate are not independent looks at it (one photo cut two ways, frames a few hundredths of
a second apart), so the sum counts as their mean against the prior: one decision, once, over all reads.
The best text wins whole: a vote never mixes the characters of two texts, so two reads of valid plates
cannot vote a plate that fits no format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from picar.types import OcrResult, Reading
from picar.vision.ctc_grammar import path_chars, score_texts

FLOOR = math.log(1e-6)  # a read without frames (a fixed-slot model) gives a text it never offered this


def _readings(r: OcrResult) -> tuple[Reading, ...]:
    if r.readings:
        return r.readings
    return tuple(Reading(t, r.series if t == r.text else None, math.log(max(c, 1e-12)), 0.0)
                 for t, c in (r.candidates or ((r.text, r.confidence),)))


def vote(reads: Sequence[OcrResult], max_candidates: int = 8,
         scored: dict[int, dict[str, float]] | None = None) -> OcrResult:
    """The read whose text has the most evidence over all `reads` (see the module docstring), with the
    characters of the read that saw it best and the other texts as candidates. Empty reads abstain.
    `scored` keeps the texts already scored on each read (by `id`) for the next vote over the same reads,
    as a track's vote is taken again with every new frame."""
    reads = [r for r in reads if r.text]
    if not reads:
        return OcrResult(text="", confidence=0.0, chars=(), candidates=())
    if len(reads) == 1:
        return reads[0]
    first: dict[str, Reading] = {}
    for r in reads:
        for rd in _readings(r):
            first.setdefault(rd.text, rd)
    texts = list(first)
    model = np.zeros(len(texts))
    best_read: dict[str, tuple[float, OcrResult, Reading]] = {}
    owns = [{rd.text: rd for rd in _readings(r)} for r in reads]
    knowns = [scored.setdefault(id(r), {}) if scored is not None else {} for r in reads]
    jobs = [(r, known, [t for t in texts if t not in own and t not in known])
            for r, own, known in zip(reads, owns, knowns, strict=True)]
    jobs = [(r, known, missing) for r, known, missing in jobs if missing and r.frames is not None]
    found = score_texts([(r.frames, missing) for r, _, missing in jobs if r.frames is not None])
    for (_, known, missing), scores in zip(jobs, found, strict=True):
        known.update(zip(missing, scores.tolist(), strict=True))
    for r, own, known in zip(reads, owns, knowns, strict=True):
        for k, t in enumerate(texts):
            mine = own.get(t)
            model[k] += mine.model if mine is not None else known.get(t, FLOOR)
            if mine is not None and (t not in best_read or mine.model > best_read[t][0]):
                best_read[t] = (mine.model, r, mine)
    # The reads of one plate are not independent looks (the same frame cut two ways, a car a few frames
    # apart): their evidence is averaged, the prior weighed once against the average.
    model /= len(reads)
    total = model + np.array([first[t].prior for t in texts])
    order = np.argsort(-total, kind="stable")[:max_candidates]
    top = texts[int(order[0])]
    _, read, reading = best_read[top]
    if read.text == top:
        chars = read.chars
    elif read.frames is not None and reading.runs:
        chars = path_chars(reading, read.frames)
    else:
        chars = tuple(read.chars) if len(read.chars) == len(top) else ()
    conf = float(np.prod([c.confidence for c in chars])) if chars else read.confidence
    best = float(total[order[0]])
    candidates = tuple((texts[int(k)], conf * math.exp(float(total[k]) - best)) for k in order)
    summed = tuple(Reading(texts[int(k)], first[texts[int(k)]].series, float(model[k]), first[texts[int(k)]].prior)
                   for k in order)
    return OcrResult(top, conf, chars, candidates, first[top].series, summed)
