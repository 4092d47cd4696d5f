"""One read out of several reads of the same plate (`picar.vision.votes`), on reads the real decode made from
hand-made frames, and the photo OCR's cuts."""

from __future__ import annotations

import numpy as np
import pytest

from picar.types import OcrResult
from picar.vision.grammar import fits
from picar.vision.ocr import crop_variants
from picar.vision.votes import vote
from tests.ctc_frames import frames, read, spelled


def test_two_valid_plates_never_vote_a_plate_that_fits_no_format() -> None:
    # A character vote of ABC1234, ABC1234 and 1ABC234 position by position gives 1BC1234 (or worse)
    # (the middle read's frames show its missing 1 faintly, as a blurred character does)
    reads = [read(spelled("ABC1234"), "us"), read(spelled("1ABC234", faint={4: ("1", 0.3)}), "us"),
             read(spelled("ABC1234"), "us")]
    assert [r.text for r in reads] == ["ABC1234", "1ABC234", "ABC1234"]
    voted = vote(reads)
    assert voted.text == "ABC1234" and voted.series == fits("ABC1234", "us")
    assert "1BC1234" not in dict(voted.candidates)
    assert set(dict(voted.candidates)) <= {t for r in reads for t, _ in r.candidates}
    # with no faint 1 the middle read says outright there is none: a text between the two may win, but
    # still one a read offered and a format allows, never a mix
    sure = [read(spelled("ABC1234"), "us"), read(spelled("1ABC234", conf=0.99), "us"), read(spelled("ABC1234"), "us")]
    mixed = vote(sure)
    assert mixed.text in {t for r in sure for t, _ in r.candidates} and fits(mixed.text, "us")
    assert "".join(c.char for c in voted.chars) == voted.text


def test_a_text_is_scored_on_reads_that_never_offered_it() -> None:
    # one clear read of B123ABC and two reads where the 3 is weak against an 8 they read instead:
    # the 8 reads still give B123ABC most of their evidence, so it wins against two reads out of three
    clear = read(spelled("B123ABC"), "ro")
    weak = [read(spelled("B128ABC", conf=0.95, weak={3: ("3", 0.45)}), "ro") for _ in range(2)]
    assert all(w.text == "B128ABC" for w in weak)
    assert vote([clear, *weak]).text == "B123ABC"
    strong = [read(spelled("B128ABC", conf=0.99), "ro") for _ in range(2)]
    assert vote([*strong, clear]).text == "B128ABC"  # against two sure reads of the 8 it does not


def test_a_weak_single_frame_misread_is_outvoted_and_empty_reads_abstain() -> None:
    reads = [read(spelled("CCLVN3")), read(spelled("CCLV3", conf=0.8, faint={4: ("N", 0.3)})), OcrResult("", 0.0, ()),
             read(spelled("CCLVN3"))]
    voted = vote(reads)
    assert voted.text == "CCLVN3" and voted.candidates[0] == (voted.text, voted.confidence)
    assert "CCLV3" in {r.text for r in vote(reads, max_candidates=50).readings}  # scored, low
    assert vote([OcrResult("", 0.0, ())]) == OcrResult("", 0.0, (), ())
    assert vote([]).text == ""
    assert vote([reads[0]]) is reads[0]


def test_the_scores_on_each_read_are_kept_for_the_next_vote() -> None:
    reads = [read(spelled("MD123")), read(spelled("MD128", weak={4: ("3", 0.4)}))]
    scored: dict[int, dict[str, float]] = {}
    first = vote(reads, scored=scored)
    assert scored and all(isinstance(v, float) for s in scored.values() for v in s.values())
    assert vote(reads, scored=scored) == first


def test_two_row_frames_vote_like_one_row_ones() -> None:
    top = frames({"1": 0.95}, {"2": 0.95}, {"3": 0.95}, {"4": 0.95}, None, None,
                 {"A": 0.95}, None, {"B": 0.95}, None, None, None)
    reads = [read(top, "ua", frames_per_row=6) for _ in range(2)]
    voted = vote(reads)
    assert (voted.text, voted.series) == ("1234AB", "ua.tractor")
    assert voted.readings[0].model == pytest.approx(reads[0].readings[0].model)  # the mean over the reads


def test_crop_variants_are_the_cut_and_a_tighter_one() -> None:
    crop = np.random.default_rng(0).integers(0, 255, (50, 200, 3), np.uint8)
    same, tight = crop_variants(crop)
    assert same is crop
    assert tight.shape == (48, 192, 3) and np.array_equal(tight, crop[1:49, 4:196])
    assert len(crop_variants(np.zeros((0, 10, 3), np.uint8))) == 1
    assert len(crop_variants(np.zeros((10, 20, 3), np.uint8))) == 1  # too small to trim
    assert len(crop_variants(np.zeros((34, 50, 3), np.uint8))) == 2  # the smallest that is trimmed
