"""One read out of several reads of the same plate (`picar.vision.votes`), and the photo OCR that uses it."""

from __future__ import annotations

import numpy as np

from picar.types import CharRead, OcrResult
from picar.vision.ocr import crop_variants
from picar.vision.votes import vote_reads


def read(text: str, *probs: float, alts: dict[int, tuple[str, float]] | None = None) -> OcrResult:
    alts = alts or {}
    chars = tuple(CharRead(c, p, (alts[i],) if i in alts else ()) for i, (c, p) in enumerate(zip(text, probs,
                                                                                                strict=True)))
    return OcrResult(text, float(np.prod(probs)), chars, ((text, float(np.prod(probs))),))


def test_each_position_takes_the_character_most_reads_back() -> None:
    reads = [read("B123ABC", .9, .9, .9, .9, .9, .9, .9),
             read("B128ABC", .9, .9, .9, .5, .9, .9, .9, alts={3: ("3", .4)}),
             read("B123ABC", .8, .8, .8, .8, .8, .8, .8)]
    voted = vote_reads(reads)
    assert voted.text == "B123ABC"
    assert voted.chars[3].alternatives[0][0] == "8"  # the minority read stays an alternative
    assert voted.candidates[0] == (voted.text, voted.confidence)
    assert any(t == "B128ABC" for t, _ in voted.candidates[1:])


def test_the_length_most_confidence_agrees_on_wins_and_empty_reads_abstain() -> None:
    reads = [read("AB123", .9, .9, .9, .9, .9), read("AB1234", .5, .5, .5, .5, .5, .5),
             OcrResult("", 0.0, ()), read("AB123", .7, .7, .7, .7, .7)]
    assert vote_reads(reads).text == "AB123"
    assert vote_reads([OcrResult("", 0.0, ())]) == OcrResult("", 0.0, (), ())
    assert vote_reads([]).text == ""


def test_crop_variants_are_the_cut_a_looser_and_a_tighter_one() -> None:
    crop = np.random.default_rng(0).integers(0, 255, (50, 200, 3), np.uint8)
    same, loose, tight = crop_variants(crop)
    assert same is crop
    assert loose.shape == (56, 216, 3) and np.array_equal(loose[3:-3, 8:-8], crop)
    assert tight.shape == (48, 192, 3) and np.array_equal(tight, crop[1:49, 4:196])
    assert len(crop_variants(np.zeros((0, 10, 3), np.uint8))) == 1
    assert len(crop_variants(np.zeros((10, 20, 3), np.uint8))) == 2  # too small to trim
