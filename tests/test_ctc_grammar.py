"""The format-constrained CTC reading (picar.vision.ctc_grammar) and fitting reads to a region
(picar.vision.formats.fit_region), on tiny hand-made frame probabilities; a real session on golden crops."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from picar.types import CharRead, OcrResult
from picar.vision.ctc_grammar import best_fitting, compress_blanks, template_masks
from picar.vision.formats import _parse, apply_region, fit_region, matches, settle_digit_run, settle_top_line
from picar.vision.ocr import PlateOcr, decode
from picar.vision.votes import vote_texts

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK = len(ALPHABET)
ROOT = Path(__file__).resolve().parents[1]
GOLDEN = sorted((ROOT / "tests" / "data" / "ocr").glob("*.jpg"))


def frames(*spec: dict[str, float] | None) -> np.ndarray:
    """One CTC frame per item: {char: probability}, the rest of the mass on the blank; None = sure blank."""
    out = np.full((len(spec), BLANK + 1), 1e-9)
    for t, item in enumerate(spec):
        for ch, p in (item or {}).items():
            out[t, ALPHABET.index(ch)] = p
        out[t, BLANK] = max(1e-9, 1.0 - out[t, :BLANK].sum())
    return out


def masks(*templates: str) -> tuple[np.ndarray, np.ndarray]:
    return template_masks([_parse(t) for t in templates], ALPHABET)


def raw_read(probs: np.ndarray) -> OcrResult:
    return decode(probs[None], ALPHABET, "_", decoder="ctc")[0]


# A Brazilian plate AIQ1175 read as AID1775: the third character looks like D more than Q, and the
# double 1 collapsed because no blank frame separates the two runs.
AIQ1175 = frames({"A": 0.9}, None, {"I": 0.9}, None, {"D": 0.6, "Q": 0.3}, None, {"1": 0.8},
                 {"1": 0.5, "7": 0.4}, {"7": 0.9}, None, {"7": 0.9}, None, {"5": 0.95}, None, None, None)


def test_best_fitting_finds_the_digit_the_format_demands_and_reports_its_cost() -> None:
    raw = raw_read(AIQ1175)
    assert raw.text == "AID1775"  # fits LLLDDDD already: the grammar has nothing to say
    reads = best_fitting(AIQ1175, *masks("LLLDDDD"), ALPHABET)
    assert reads[0].text == "AID1775" and reads[0].log_cost == pytest.approx(0.0)
    # a format with a digit in third place forces the model's best digit there, at a price
    reads = best_fitting(AIQ1175, *masks("LLDDDDD"), ALPHABET)
    assert reads[0].text[:2] == "AI" and reads[0].text[2].isdigit() and reads[0].log_cost < -5


def test_best_fitting_uses_runner_up_frames_and_keeps_repeats_apart() -> None:
    # Q loses the frame to D; 1 1 needs two runs split by a blank or a different character
    probs = frames({"A": 0.9}, None, {"I": 0.9}, None, {"D": 0.6, "0": 0.35}, None,
                   {"1": 0.9}, {"1": 0.6}, {"1": 0.9}, None, {"7": 0.9}, None, {"5": 0.95})
    assert raw_read(probs).text == "AID175"
    reads = best_fitting(probs, *masks("LLLDDDD"), ALPHABET)
    assert reads[0].text == "AID1175"
    # its characters spell it, each with its peak probability and runners-up
    assert "".join(c.char for c in reads[0].chars) == "AID1175"
    assert reads[0].chars[0].confidence == pytest.approx(0.9)
    assert all(0 < c.confidence <= 1 for c in reads[0].chars)
    # a digit-only format takes the model's digit alternative for D
    reads = best_fitting(probs, *masks("LLDDDDD"), ALPHABET)
    assert reads[0].text == "AI01175"


def test_best_fitting_returns_nothing_when_no_template_can_be_spelt() -> None:
    probs = frames({"A": 0.9}, None, {"B": 0.9})
    assert best_fitting(probs, *masks("DDDDDDD"), ALPHABET) == []  # no digit ever above RARE
    with pytest.raises(ValueError, match="shape"):
        best_fitting(probs[:, :10], *masks("LL"), ALPHABET)
    with pytest.raises(ValueError, match="at least one template"):
        template_masks([], ALPHABET)


def test_compress_blanks_keeps_one_frame_between_repeated_characters() -> None:
    probs = np.log(frames({"1": 0.9}, None, None, None, {"1": 0.9}, None))
    kept, where = compress_blanks(probs, BLANK)
    assert where.tolist() == [0, 1, 4, 5]
    assert kept.shape == (4, BLANK + 1)


def test_fit_region_replaces_a_read_that_fits_no_format_in_a_strict_region() -> None:
    probs = frames({"A": 0.9}, None, {"I": 0.9}, None, {"D": 0.6, "Q": 0.3}, None, {"T": 0.55, "1": 0.4},
                   {"1": 0.05}, {"1": 0.3}, {"7": 0.9}, None, {"5": 0.95})
    raw = raw_read(probs)
    assert raw.text == "AIDT75" and not matches(raw.text, "br")
    fitted = fit_region(raw, probs, "br", ALPHABET)
    assert fitted.text == "AID1175"  # the letter in third place stays the model's best letter
    assert "".join(c.char for c in fitted.chars) == fitted.text
    assert fitted.confidence == pytest.approx(math.prod(c.confidence for c in fitted.chars))
    assert "AIDT75" in dict(fitted.candidates)  # the raw read is kept
    assert fitted.candidates[0][0] == fitted.text


def test_fit_region_leaves_fitting_reads_and_unlikely_fits_alone() -> None:
    probs = frames({"A": 0.9}, None, {"B": 0.9}, None, {"C": 0.9}, None, {"1": 0.9}, None, {"2": 0.9},
                   None, {"3": 0.9})
    raw = raw_read(probs)
    assert fit_region(raw, probs, "md", ALPHABET) is raw  # ABC123 fits Moldova
    # a US vanity read: the best US format would need characters the model all but ruled out
    vanity = frames({"C": 0.95}, None, {"U": 0.95}, None, {"S": 0.95, "5": 0.001}, None, {"T": 0.95},
                    None, {"0": 0.95}, None, {"M": 0.95})
    read = raw_read(vanity)
    fitted = fit_region(read, vanity, "us", ALPHABET)
    assert fitted.text == "CUST0M" and fitted.chars == read.chars
    with pytest.raises(ValueError, match="allowed regions"):
        fit_region(read, vanity, "mars", ALPHABET)


def test_apply_region_characters_spell_the_promoted_candidate() -> None:
    # the tracker votes characters: a promoted candidate must not keep the raw read's characters
    chars = tuple(CharRead(c, 0.9) for c in "AI01775")
    raw = OcrResult("AI01775", 0.5, chars, (("AI01775", 0.5), ("AIQ1175", 0.3)))
    fixed = apply_region(raw, "br")
    assert fixed.text == "AIQ1175"
    assert "".join(c.char for c in fixed.chars) == "AIQ1175"
    assert fixed.chars[2].alternatives[0][0] == "0"


def test_vote_texts_takes_the_text_with_most_confidence_and_pools_candidates() -> None:
    a = OcrResult("B123ABC", 0.5, tuple(CharRead(c, 0.9) for c in "B123ABC"), (("B123ABC", 0.5),))
    b = OcrResult("B123ABC", 0.3, tuple(CharRead(c, 0.8) for c in "B123ABC"), (("B123ABC", 0.3),))
    c = OcrResult("B12ABC", 0.7, tuple(CharRead(c, 0.95) for c in "B12ABC"), (("B12ABC", 0.7), ("B123ABC", 0.1)))
    voted = vote_texts([a, b, c, OcrResult("", 0.0, ())])
    assert voted.text == "B123ABC" and voted.confidence == 0.5 and voted.chars == a.chars
    assert dict(voted.candidates)["B12ABC"] == pytest.approx(0.7 / 3, abs=1e-6)
    assert vote_texts([]).text == ""


@pytest.mark.parametrize("region", ["auto", "eu", "us"])
def test_shipped_model_golden_crops_read_the_same_with_a_region(region: str) -> None:
    ocr = PlateOcr(ROOT / "models" / "plate_ocr.onnx")
    crops = [cv2.imread(str(p)) for p in GOLDEN]
    assert len(crops) >= 8
    for path, fitted in zip(GOLDEN, ocr.read(crops, region), strict=True):
        assert fitted.text == path.stem.split("_")[-1], (path.name, fitted.text)
        assert "".join(c.char for c in fitted.chars) == fitted.text


def test_open_regions_leave_two_row_reads_alone_strict_ones_do_not() -> None:
    # 2 rows of 6 frames: "ABC" on the upper row, "1X3" on the lower (the X nearly a 2)
    probs = frames({"A": 0.9}, None, {"B": 0.9}, None, {"C": 0.9}, None,
                   {"1": 0.9}, None, {"X": 0.5, "2": 0.4}, None, {"3": 0.9}, None)
    raw = raw_read(probs)
    assert raw.text == "ABC1X3" and not matches(raw.text, "eu")
    assert fit_region(raw, probs, "eu", ALPHABET).text == "ABC123"  # one row as far as it knows
    assert fit_region(raw, probs, "eu", ALPHABET, frames_per_row=6) is raw  # two rows: left to the model
    assert fit_region(raw, probs, "md", ALPHABET, frames_per_row=6).text == "ABC123"  # strict: fitted
    # the same read on one row of 12 frames is fitted in the open region too
    assert fit_region(raw, probs, "eu", ALPHABET, frames_per_row=12).text == "ABC123"


# 2 rows of 6 frames: "H0" on the upper row (a round glyph read as the digit), "422D" on the lower.
H0_422D = frames({"H": 0.9}, None, {"0": 0.95, "O": 0.03}, None, None, None,
                 {"4": 0.9}, {"2": 0.9}, None, {"2": 0.9}, {"D": 0.9}, None)


def test_settle_top_line_reads_a_round_glyph_among_top_line_letters_as_o() -> None:
    raw = raw_read(H0_422D)
    assert raw.text == "H0422D"
    settled = settle_top_line(raw, H0_422D, frames_per_row=6)
    assert settled.text == "HO422D"
    assert "".join(c.char for c in settled.chars) == settled.text
    assert settled.chars[1].alternatives[0][0] == "0"  # the digit stays as the alternative
    assert settled.candidates[0][0] == "HO422D" and "H0422D" in [t for t, _ in settled.candidates]
    assert settled.confidence == raw.confidence


def test_settle_top_line_leaves_one_row_reads_and_top_lines_with_digits_alone() -> None:
    raw = raw_read(H0_422D)
    assert settle_top_line(raw, H0_422D, frames_per_row=12) is raw  # one row: H0422D may be right
    # "30" over "4994": the top line holds a digit, so its 0 is a digit too
    probs = frames({"3": 0.9}, None, {"0": 0.9}, None, None, None,
                   {"4": 0.9}, {"9": 0.9}, None, {"9": 0.9}, {"4": 0.9}, None)
    digits = raw_read(probs)
    assert settle_top_line(digits, probs, frames_per_row=6) is digits
    # a top line of zeros only has no letter to go by
    zeros = frames({"0": 0.9}, None, None, None, None, None, {"4": 0.9}, None, None, None, None, None)
    assert settle_top_line(raw_read(zeros), zeros, frames_per_row=6).text == "04"


def text_read(text: str) -> OcrResult:
    chars = tuple(CharRead(c, 0.8, ((c, 0.8), ("X", 0.1))) for c in text)
    return OcrResult(text, 0.8 ** len(text), chars, ((text, 0.8 ** len(text)), (text + "X", 0.01)))


@pytest.mark.parametrize(("raw", "settled"), [("KOS46I", "KOS461"), ("AB12O", "AB120"), ("3O5ABC", "305ABC"),
                                              ("12O3", "1203")])
def test_settle_digit_run_reads_letters_no_registration_puts_among_digits_as_digits(raw: str, settled: str) -> None:
    read = settle_digit_run(text_read(raw))
    assert read.text == settled
    assert "".join(c.char for c in read.chars) == settled
    changed = [i for i, (a, b) in enumerate(zip(raw, settled, strict=True)) if a != b]
    assert all(read.chars[i].alternatives[0][0] == raw[i] for i in changed)  # the letter stays the alternative
    assert read.candidates[0][0] == settled and raw in [t for t, _ in read.candidates]


@pytest.mark.parametrize("raw", ["ABC1I23", "AB1I", "W2IZI", "L0RAFI", "BA215AI", "ABC123", "O12", "I5"])
def test_settle_digit_run_leaves_letters_a_format_allows_alone(raw: str) -> None:
    read = text_read(raw)  # Mercosur's fifth-place I, one digit before a final letter, letters before it
    assert settle_digit_run(read) is read


def two_row_crop(top: str, bottom: str) -> np.ndarray:
    """A plain two-row plate drawn with OpenCV's Hershey face, whose round glyphs the model reads as 0."""
    img = np.full((100, 140, 3), 235, np.uint8)
    cv2.rectangle(img, (1, 1), (138, 98), (30, 30, 30), 2)
    cv2.putText(img, top, (22, 44), cv2.FONT_HERSHEY_DUPLEX, 1.4, (20, 20, 20), 2)
    cv2.putText(img, bottom, (12, 90), cv2.FONT_HERSHEY_DUPLEX, 1.4, (20, 20, 20), 2)
    return img


def constant_ctc_model(tmp: Path, probs: np.ndarray, frames_per_row: int) -> Path:
    """A real ONNX session that answers every crop with the hand-made CTC frames `probs`, and its sidecar."""
    import json

    import onnx
    from onnx import TensorProto, helper

    slots, classes = probs.shape
    nodes = [  # batch of N crops -> N copies of the frames: (N,1,1) x (1,slots,classes)
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "one"], ["ones"]),
        helper.make_node("Reshape", ["ones", "n11"], ["n1"]),
        helper.make_node("Mul", ["n1", "frames"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes, "constant_ctc",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 16, 32, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", slots, classes])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
         helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
         helper.make_tensor("n11", TensorProto.INT64, [3], [-1, 1, 1]),
         helper.make_tensor("frames", TensorProto.FLOAT, [1, slots, classes], probs.astype(np.float32).ravel())],
    )
    path = tmp / "constant_ctc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    side = {"input": {"name": "image", "shape": [None, 16, 32, 1], "dtype": "uint8", "layout": "NHWC",
                      "color": "gray"},
            "output": {"name": "probs"}, "alphabet": ALPHABET, "pad": "_", "slots": slots,
            "decode": {"decoder": "ctc", "top_k": 3, "max_candidates": 8, "frames_per_row": frames_per_row},
            "thresholds": {"min_char_confidence": 0.0, "min_plate_confidence": 0.1}, "version": "test"}
    path.with_suffix(".json").write_text(json.dumps(side))
    return path


def test_the_runtime_settles_the_top_line_except_in_the_us(tmp_path: Path) -> None:
    # The rule itself is tested above; here, that PlateOcr.read applies it by region, on a real session.
    ocr = PlateOcr(constant_ctc_model(tmp_path, H0_422D, frames_per_row=6))
    crop = two_row_crop("XH0", "557")
    assert ocr.read([crop], "us")[0].text == "H0422D"  # US plates write that glyph as 0
    for region in (None, "auto", "eu"):
        read = ocr.read([crop], region)[0]
        assert read.text == "HO422D", region
        assert "H0422D" in [t for t, _ in read.candidates]
    one_row = PlateOcr(constant_ctc_model(tmp_path, H0_422D, frames_per_row=12))
    assert one_row.read([crop], "eu")[0].text == "H0422D"  # one row: H0422D may be right


def test_shipped_model_reads_drawn_two_row_plates() -> None:
    # The shipped model on plates it never saw: an accuracy floor with a margin, not one model's
    # probabilities. v2.2.1 reads all ten (Hershey's 0 is another matter: it reads XH0 557 as XH557).
    ocr = PlateOcr(ROOT / "models" / "plate_ocr.onnx")
    plates = [("XHO", "557"), ("AB", "1234"), ("KL", "9087"), ("MO", "4521"), ("CJ", "6771"), ("BZ", "3366"),
              ("TR", "2468"), ("VS", "1357"), ("PH", "8899"), ("DE", "5432")]
    reads = [r.text for r in ocr.read([two_row_crop(top, bottom) for top, bottom in plates], "eu")]
    right = sum(got == top + bottom for got, (top, bottom) in zip(reads, plates, strict=True))
    assert right >= 8, reads  # margin: two of ten may go wrong for a retrained model
