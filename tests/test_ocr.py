"""Plate OCR runtime: pure pre/post-processing on tiny arrays, region grammars, a real ONNX session on a
tiny generated model, and golden crops that the shipped model must read."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import picar.vision.ocr as ocr_module
from picar.vision.grammar import shortest_plate
from picar.vision.ocr import VOTE_BELOW, VOTE_MIN_CHARS, PlateOcr, crop_variants, decode, preprocess
from picar.vision.session import ModelError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "plate_ocr.onnx"
GOLDEN = sorted((ROOT / "tests" / "data" / "ocr").glob("*.jpg"))


# --------------------------------------------------------------------------- preprocess


def test_preprocess_converts_bgr_to_gray_and_stretches_to_input_size() -> None:
    crop = np.zeros((10, 40, 3), np.uint8)
    crop[:, :20] = (255, 0, 0)  # blue in BGR -> gray 29
    crop[:, 20:] = (0, 0, 255)  # red -> gray 76
    out = preprocess([crop], height=4, width=8)
    assert out.shape == (1, 4, 8, 1) and out.dtype == np.uint8
    assert out[0, :, 0, 0].tolist() == [29] * 4
    assert out[0, :, 7, 0].tolist() == [76] * 4


def test_preprocess_accepts_gray_and_bgra_and_batches_mixed_sizes() -> None:
    gray = np.full((3, 5), 200, np.uint8)
    bgra = np.zeros((50, 20, 4), np.uint8)
    bgra[..., :3] = 100
    out = preprocess([gray, bgra], height=6, width=12)
    assert out.shape == (2, 6, 12, 1)
    assert np.all(out[0] == 200) and np.all(out[1] == 100)


def test_preprocess_three_channel_models_get_bgr() -> None:
    gray = np.full((4, 4), 9, np.uint8)
    out = preprocess([gray], height=2, width=2, channels=3)
    assert out.shape == (1, 2, 2, 3) and np.all(out == 9)


@pytest.mark.parametrize(
    ("crop", "message"),
    [(np.zeros((0, 5, 3), np.uint8), "crop 0"), (np.zeros((4, 4, 2), np.uint8), "shape"),
     (np.zeros((4, 4, 3), np.float32), "uint8")],
)
def test_preprocess_rejects_bad_crops_naming_them(crop: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess([crop], height=4, width=8)


# --------------------------------------------------------------------------- decode


def _probs(rows: list[dict[str, float]], classes: str) -> np.ndarray:
    """One sample: per slot a {char: prob} dict, the remainder spread evenly over other classes."""
    arr = np.zeros((1, len(rows), len(classes)))
    for s, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / max(1, len(classes) - len(row))
        arr[0, s] = [row.get(c, rest) for c in classes]
    return arr


def test_decode_drops_pads_and_multiplies_slot_probabilities() -> None:
    probs = _probs([{"A": 0.9, "B": 0.1}, {"1": 0.8, "B": 0.2}, {"_": 1.0}], "AB1_")
    (res,) = decode(probs, alphabet="AB1", pad="_", top_k=2)
    assert res.text == "A1"
    assert res.confidence == pytest.approx(0.9 * 0.8 * 1.0)
    assert [c.char for c in res.chars] == ["A", "1"]
    assert res.chars[0].alternatives == (("B", pytest.approx(0.1)),)
    assert res.candidates[0] == ("A1", pytest.approx(0.72))
    assert ("AB", pytest.approx(0.9 * 0.2)) in res.candidates
    assert ("B1", pytest.approx(0.1 * 0.8)) in res.candidates


def test_decode_merges_slot_paths_that_spell_the_same_text() -> None:
    # "A" then pad, or pad then "A": both spell "A"
    probs = _probs([{"A": 0.6, "_": 0.4}, {"_": 0.6, "A": 0.4}], "AB_")
    (res,) = decode(probs, alphabet="AB", pad="_", top_k=2)
    assert res.text == "A"
    assert res.candidates[0][0] == "A"
    assert res.candidates[0][1] == pytest.approx(0.6 * 0.6 + 0.4 * 0.4)
    assert ("AA", pytest.approx(0.24)) in res.candidates


def test_decode_all_pad_gives_empty_text_and_limits_candidates() -> None:
    probs = np.tile(_probs([{"_": 0.5, "A": 0.3, "B": 0.2}] * 3, "AB_"), (2, 1, 1))
    results = decode(probs, alphabet="AB", pad="_", top_k=3, max_candidates=4)
    assert len(results) == 2
    assert results[0].text == "" and results[0].chars == ()
    assert len(results[0].candidates) == 4
    assert all(t for t, _ in results[0].candidates)  # the empty text is never a candidate


def test_ctc_decode_collapses_runs_drops_blanks_and_offers_near_misses() -> None:
    frames = [{"_": 0.9}, {"A": 0.9}, {"A": 0.8}, {"_": 0.9}, {"A": 0.6, "B": 0.3}, {"_": 0.9},
              {"_": 0.7, "1": 0.2}, {"_": 0.9}, {"1": 0.9}, {"_": 0.95}]
    (res,) = decode(_probs(frames, "AB1_"), alphabet="AB1", pad="_", top_k=2, decoder="ctc")
    assert res.text == "AA1"  # A A (blank) A collapses to AA, then 1
    assert [c.confidence for c in res.chars] == pytest.approx([0.9, 0.6, 0.9])
    assert res.chars[1].alternatives[0] == ("B", pytest.approx(0.3))
    assert res.confidence == pytest.approx(0.9 * 0.6 * 0.9)
    assert res.candidates[0] == ("AA1", res.confidence)
    texts = [t for t, _ in res.candidates]
    assert "AB1" in texts and "AA11" in texts  # the runner-up, and the near-miss 1 in the blank run
    assert res.series is None and res.readings[0].text == "AA1" and res.frames is not None


def test_ctc_decode_offers_no_extra_character_that_would_merge_into_its_neighbour() -> None:
    # a 1 just before the run of 1s would only lengthen that run: "A1", never "A11"
    frames = [{"A": 0.9}, {"_": 0.9}, {"_": 0.6, "1": 0.4}, {"1": 0.9}, {"_": 0.95}]
    (res,) = decode(_probs(frames, "AB1_"), alphabet="AB1", pad="_", top_k=2, decoder="ctc")
    assert res.text == "A1" and "A11" not in dict(res.candidates)
    assert res.confidence == pytest.approx(0.9 * 0.9)


def test_decode_rejects_mismatched_shapes_and_bad_pad() -> None:
    with pytest.raises(ValueError, match=r"\(N, slots, 3\)"):
        decode(np.zeros((1, 2, 4)), alphabet="AB", pad="_")
    with pytest.raises(ValueError, match="pad"):
        decode(np.zeros((1, 2, 3)), alphabet="AB", pad="A")
    with pytest.raises(ValueError, match="decoder"):
        decode(np.zeros((1, 2, 3)), alphabet="AB", pad="_", decoder="beam")


# --------------------------------------------------------------------------- synthetic plates


def test_every_style_renders_a_registration_and_degrade_keeps_the_shape() -> None:
    from picar.train.plates import STYLES, degrade, render_plate

    rng = np.random.default_rng(5)
    for style in STYLES:
        plate = render_plate(rng, style)
        assert plate.style == style and plate.rows in (1, 2, 3)  # three: Ukrainian motorcycles
        assert plate.image.dtype == np.uint8 and plate.image.ndim == 3 and plate.image.shape[2] == 3
        assert plate.text.isalnum() and plate.text.isupper() or plate.text.isdigit()
        assert 4 <= len(plate.text) <= 10, (style, plate.text)
        damaged = degrade(plate.image, rng, 1.0)
        assert damaged.shape == plate.image.shape and damaged.dtype == np.uint8
    assert {render_plate(rng, "eu_square").rows, render_plate(rng, "moto").rows} == {2}


def test_render_plate_uses_the_given_text_and_rejects_bad_input() -> None:
    from picar.train.plates import render_plate

    rng = np.random.default_rng(6)
    plate = render_plate(rng, "ro", text="cj07xyz")
    assert plate.text == "CJ07XYZ" and plate.rows == 1
    assert render_plate(rng, "eu_square", text="AB123CD").rows == 2
    with pytest.raises(ValueError, match="A-Z0-9"):
        render_plate(rng, "us", text="AB-12")
    with pytest.raises(ValueError, match="known:"):
        render_plate(rng, "mars")


def test_brazilian_commercial_plates_are_light_on_dark_in_gray() -> None:
    from picar.train.plates import render_plate

    for seed in range(5):
        red = render_plate(np.random.default_rng(seed), "br_old_red", text="AOD1234")
        grey = render_plate(np.random.default_rng(seed), "br_old", text="AOD1234")
        assert red.text == grey.text == "AOD1234"
        g_red = cv2.cvtColor(red.image, cv2.COLOR_BGR2GRAY)
        g_grey = cv2.cvtColor(grey.image, cv2.COLOR_BGR2GRAY)
        assert np.median(g_red) < 128 < np.percentile(g_red, 97)  # dark plate, light characters
        assert np.median(g_grey) > 128 > np.percentile(g_grey, 3)  # light plate, dark characters


def test_badges_stay_inside_their_box_and_out_of_the_registration() -> None:
    from picar.train.plates import BADGES, _draw_badge, render_plate

    rng = np.random.default_rng(8)
    for kind in BADGES:
        canvas = np.full((60, 80, 3), 255, np.uint8)
        _draw_badge(canvas, kind, (20, 10, 30, 40), rng)
        changed = np.argwhere((canvas != 255).any(axis=2))
        assert len(changed) > 50, kind
        assert changed[:, 0].min() >= 10 and changed[:, 0].max() <= 50, kind
        assert changed[:, 1].min() >= 20 and changed[:, 1].max() <= 50, kind
    with pytest.raises(ValueError, match="known:"):
        _draw_badge(np.zeros((9, 9, 3), np.uint8), "sticker", (0, 0, 8, 8), rng)

    plain = render_plate(np.random.default_rng(9), "eu_square", text="AB123CD")
    badged = render_plate(np.random.default_rng(9), "eu_square", text="AB123CD", badges=1.0)
    assert badged.text == plain.text == "AB123CD" and badged.rows == 2
    assert not np.array_equal(badged.image, plain.image)
    one_row = [render_plate(np.random.default_rng(10), "ro", text="CJ07XYZ", badges=b).image for b in (0.0, 1.0)]
    assert np.array_equal(*one_row)  # badges go beside the rows of two-row plates only
    with pytest.raises(ValueError, match="badges"):
        render_plate(rng, "eu_square", badges=1.5)


def test_training_fonts_are_checked_before_rendering() -> None:
    from picar.train.plates import PLATE_FONTS, render_plate, require_fonts

    require_fonts(PLATE_FONTS)  # the demo and golden crops' fonts
    with pytest.raises(FileNotFoundError) as err:
        require_fonts([PLATE_FONTS[0], "opendin/NoSuchFace.ttf", "roboto/unhinted/Nope.ttf"])
    assert "NoSuchFace.ttf (apt install fonts-opendin;" in str(err.value)
    assert "Nope.ttf (apt install fonts-roboto-unhinted;" in str(err.value)
    assert PLATE_FONTS[0] not in str(err.value)
    assert render_plate(np.random.default_rng(7), "de", text="BAB123", fonts=PLATE_FONTS[:1]).text == "BAB123"


# --------------------------------------------------------------------------- runtime on a real session


def _tiny_model(tmp: Path, alphabet: str = "AB1", slots: int = 3, h: int = 4, w: int = 8) -> Path:
    """uint8 (N,h,w,1) -> softmax (N,slots,classes) through one random dense layer."""
    classes = len(alphabet) + 1
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (h * w, slots * classes)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["f"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        helper.make_node("Reshape", ["logits", "shape"], ["l3"]),
        helper.make_node("Softmax", ["l3"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_ocr",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", h, w, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", slots, classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.flatten()),
         helper.make_tensor("shape", TensorProto.INT64, [3], [-1, slots, classes])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp / "tiny.onnx"
    onnx.save(model, str(path))
    side = {"input": {"name": "image", "shape": [None, h, w, 1], "dtype": "uint8", "layout": "NHWC",
                      "color": "gray"},
            "output": {"name": "probs"}, "alphabet": alphabet, "pad": "_", "slots": slots,
            "decode": {"decoder": "slots", "top_k": 2, "max_candidates": 5},
            "thresholds": {"min_char_confidence": 0.2, "min_plate_confidence": 0.01}, "version": "test"}
    path.with_suffix(".json").write_text(json.dumps(side))
    return path


def test_runtime_reads_a_batch_in_order_from_the_sidecar_config(tmp_path: Path) -> None:
    ocr = PlateOcr(_tiny_model(tmp_path))
    ocr.warm_up()
    assert ocr.input_shape == (4, 8, 1)
    crops = [np.full((20, 60, 3), v, np.uint8) for v in (0, 255, 90)]
    results = ocr.read(crops)
    assert len(results) == 3 and ocr.read([]) == []
    singles = [ocr.read([c])[0] for c in crops]
    assert [r.text for r in results] == [r.text for r in singles]
    for r in results:
        assert 0.0 < r.confidence <= 1.0 and len(r.candidates) <= 5
        assert set(r.text) <= set("AB1")
    assert results[0].confidence == pytest.approx(singles[0].confidence, rel=1e-5)
    assert results[1].text != results[0].text or not math.isclose(results[1].confidence, results[0].confidence)


def test_runtime_names_the_missing_or_wrong_sidecar_field(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path)
    side = json.loads(path.with_suffix(".json").read_text())
    del side["thresholds"]["min_char_confidence"]
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="thresholds.min_char_confidence"):
        PlateOcr(path)
    side["thresholds"]["min_char_confidence"] = 0.5
    side["decode"]["decoder"] = "attention"
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="decode.decoder"):
        PlateOcr(path)
    side["decode"]["decoder"] = "slots"
    for bad in (0, True, "16", 10_000):
        side["decode"]["frames_per_row"] = bad
        path.with_suffix(".json").write_text(json.dumps(side))
        with pytest.raises(ModelError, match="decode.frames_per_row"):
            PlateOcr(path)
    del side["decode"]["frames_per_row"]
    side["slots"] = 7
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="slots=7"):
        PlateOcr(path)


# --------------------------------------------------------------------------- golden crops, shipped model


def test_shipped_sidecar_describes_the_model() -> None:
    side = json.loads(SHIPPED.with_suffix(".json").read_text())
    ocr = PlateOcr(SHIPPED)
    assert ocr.input_shape == tuple(side["input"]["shape"][1:])
    assert ocr.alphabet == side["alphabet"] and ocr.slots == side["slots"]
    assert SHIPPED.stat().st_size <= 5 * 1024 * 1024


# One rendered crop per plate style (tests/data/ocr/README.md): the shipped model must read each exactly
# and above its calibrated confidence thresholds.
@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_crop_reads_as_its_plate(path: Path) -> None:
    ocr = PlateOcr(SHIPPED)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    (res,) = ocr.read([img])
    assert res.text == path.stem.split("_")[-1], res
    assert ocr.is_confident(res)


def test_golden_crops_read_the_same_one_by_one_and_batched() -> None:
    ocr = PlateOcr(SHIPPED)
    imgs = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in GOLDEN]
    batched = ocr.read(imgs)
    assert [r.text for r in batched] == [ocr.read([i])[0].text for i in imgs]
    assert len(GOLDEN) >= 8


def test_voted_reads_of_the_golden_crops_are_exact_and_keep_candidates() -> None:
    ocr = PlateOcr(SHIPPED)
    imgs = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in GOLDEN]
    voted = ocr.read_voted(imgs)
    assert [r.text for r in voted] == [p.stem.split("_")[-1] for p in GOLDEN]
    assert all(r.candidates[0][0] == r.text and len(r.chars) == len(r.text) for r in voted)
    assert ocr.read_voted([]) == []


def count_reads(ocr: PlateOcr) -> list[int]:
    """From now on, the batch size of every `ocr.read` call, in order."""
    sizes: list[int] = []
    read = ocr.read

    def counted(crops: Any, region: Any = None) -> Any:
        sizes.append(len(crops))
        return read(crops, region)

    ocr.read = counted  # type: ignore[method-assign]
    return sizes


def test_only_an_unsure_read_is_read_again_tighter() -> None:
    ocr = PlateOcr(SHIPPED)
    clear = cv2.imread(str(GOLDEN[0]), cv2.IMREAD_COLOR)
    h, w = clear.shape[:2]
    rng = np.random.default_rng(3)
    faint = cv2.resize(cv2.resize(clear, (w // 5, h // 5), interpolation=cv2.INTER_AREA), (w, h))
    faint = np.clip(faint * 0.4 + 80 + rng.normal(0, 25, faint.shape), 0, 255).astype(np.uint8)
    first = ocr.read([clear, faint])
    assert first[0].confidence >= VOTE_BELOW > first[1].confidence and len(first[1].text) >= VOTE_MIN_CHARS  # premise
    sizes = count_reads(ocr)
    voted = ocr.read_voted([clear, faint])
    assert sizes == [2, 1]  # both as cut, then only the faint one tighter
    assert voted[0] == first[0] and voted[1].readings != first[1].readings


def test_an_unsure_crop_too_small_to_trim_is_read_once_and_an_empty_batch_is_no_crash() -> None:
    ocr = PlateOcr(SHIPPED)
    clear = cv2.imread(str(GOLDEN[0]), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(5)
    small = cv2.resize(clear, (48, 16), interpolation=cv2.INTER_AREA)
    small = np.clip(small * 0.5 + 70 + rng.normal(0, 20, small.shape), 0, 255).astype(np.uint8)
    first = ocr.read([small])[0]
    assert first.confidence < VOTE_BELOW and len(first.text) >= VOTE_MIN_CHARS  # premise: it would be voted
    assert len(crop_variants(small)) == 1
    sizes = count_reads(ocr)
    assert ocr.read_voted([small]) == [first] and sizes == [1, 0]
    assert ocr.probabilities(np.zeros((0, *ocr.input_shape), np.uint8)).shape == (0, ocr.slots, len(ocr.alphabet) + 1)


def test_warm_up_compiles_each_cameras_grammars_before_the_first_plate() -> None:
    from picar.vision import automaton

    ocr = PlateOcr(SHIPPED)
    automaton._CACHE.clear()
    ocr.warm_up([("md",), ("md", "ro"), None])
    assert {k[1] for k in automaton._CACHE} == {("md",), ("md", "ro"), ()}
    before = dict(automaton._CACHE)
    ocr.read([cv2.imread(str(GOLDEN[0]), cv2.IMREAD_COLOR)], ("md",))
    assert before == automaton._CACHE  # the read found its automaton compiled


@pytest.mark.parametrize("region", [None, "auto", "md"])
def test_a_featureless_crop_reads_nothing_and_its_batch_still_reads(region: str | None) -> None:
    """A box on a black, grey or burnt-out white patch gives frames with no character anywhere: it reads as
    no text, and the plate beside it in the batch reads as it does alone (such a crop once failed the
    whole batch, and the daemon skipped the frame)."""
    ocr = PlateOcr(SHIPPED)
    plate = cv2.imread(str(GOLDEN[0]), cv2.IMREAD_COLOR)
    black, grey, white = (np.full((40, 120, 3), v, np.uint8) for v in (0, 114, 255))
    alone = ocr.read([plate], region)[0]
    assert alone.text
    for read in (ocr.read, ocr.read_voted):
        got = read([black, plate, grey, white], region)
        assert [r.text for r in got] == ["", alone.text, "", ""]
        assert got[0].candidates == () and got[0].chars == ()


@pytest.mark.parametrize("region", [None, "auto", "ro"])
def test_a_box_whose_frames_spell_fewer_characters_than_any_plate_reads_nothing_unsearched(
        region: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sign, bolt or badge whose likeliest frames spell one or two characters is no plate (the shortest
    series has three): it reads as no text and is not searched, the slowest searches there were."""
    from tests.ctc_frames import spelled

    ocr = PlateOcr(SHIPPED)
    assert ocr.alphabet == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" and shortest_plate() == 3
    searched: list[int] = []
    real_search = ocr_module.search
    monkeypatch.setattr(ocr_module, "search", lambda batch, *a: searched.append(len(batch)) or real_search(batch, *a))
    # "B2" (the search read it so, with the candidates 82 and B), and frames with no character at all
    sign = spelled("B2", faint={1: ("7", 0.45)}, weak={0: ("8", 0.3)})
    got = ocr.decode_probabilities(np.stack([sign, np.zeros_like(sign) + np.eye(37)[36]]), region)
    assert [r.text for r in got] == ["", ""] and got[0].candidates == () and got[0].chars == ()
    assert searched == []
    three = spelled("B2C", weak={2: ("G", 0.3)})
    (res,) = ocr.decode_probabilities(three[None], region)
    assert res.text == "B2C"
    assert searched == [1]  # unclear (C against G), so searched
