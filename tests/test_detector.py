"""Plate detector runtime: letterbox and decode on tiny arrays, and the shipped model on a drawn scene."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import picar.vision.detector as detector_module
from picar.tools.eval import iou_matrix
from picar.types import Detection
from picar.vision.detector import (
    PAD_VALUE,
    PlateDetector,
    decode,
    letterbox,
    letterbox_geometry,
    nms,
    tile_windows,
    whole_pass_needed,
)
from picar.vision.session import ModelError

MODEL = Path(__file__).resolve().parent.parent / "models" / "plate_detector.onnx"


# ---------------------------------------------------------------- letterbox


def test_letterbox_pads_centred_with_grey_and_keeps_pixels() -> None:
    img = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    tensor, scale, pad = letterbox(img, (8, 8))
    assert tensor.shape == (1, 8, 8, 3) and tensor.dtype == np.uint8
    assert scale == 1.0 and pad == (0, 2)
    assert np.array_equal(tensor[0, 2:6], img)
    assert (tensor[0, :2] == PAD_VALUE).all() and (tensor[0, 6:] == PAD_VALUE).all()


def test_letterbox_downscales_wide_frame_and_maps_coordinates() -> None:
    img = np.zeros((20, 80, 3), np.uint8)
    img[8:14, 38:46] = 255  # frame (x 42, y 12) -> input (8.4, 2.4 + 6)
    tensor, scale, pad = letterbox(img, (16, 16))
    assert scale == pytest.approx(0.2)
    assert pad == (0, 6)  # 80x20 -> 16x4, centred vertically in 16
    # a frame point x maps to x * scale + pad
    assert tensor[0, 6 + 2, 8:9].max() > 0
    assert (tensor[0, :6] == PAD_VALUE).all()


def test_letterbox_reuses_the_given_buffer_and_rejects_bad_input() -> None:
    buf = np.zeros((1, 8, 16, 3), np.uint8)
    out, _, _ = letterbox(np.full((8, 16, 3), 7, np.uint8), (8, 16), out=buf)
    assert out is buf and (buf == 7).all()
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        letterbox(np.zeros((8, 16), np.uint8), (8, 16))
    with pytest.raises(ValueError, match="buffer"):
        letterbox(np.zeros((8, 16, 3), np.uint8), (8, 16), out=np.zeros((1, 4, 4, 3), np.uint8))


def test_letterbox_geometry_portrait_frame() -> None:
    geo = letterbox_geometry((100, 50), (32, 64))
    assert geo.scale == pytest.approx(0.32)
    assert geo.resized == (16, 32) and geo.pad == (24, 0)


# ---------------------------------------------------------------- decode


def _outputs(h: int = 4, w: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((1, 1, h, w), np.float32), np.zeros((1, 4, h, w), np.float32)


def test_decode_maps_peak_box_back_to_frame_pixels() -> None:
    scores, boxes = _outputs()
    scores[0, 0, 1, 2] = 0.9
    boxes[0, :, 1, 2] = [12, 6, 22, 10]  # input px
    dets = decode((scores, boxes), scale=0.5, pad=(2, 2), frame_hw=(100, 100), threshold=0.5)
    assert dets == [Detection(20, 8, 20, 8, pytest.approx(0.9))]


def test_decode_threshold_clip_and_order() -> None:
    scores, boxes = _outputs()
    scores[0, 0, 0, 0] = 0.4  # below threshold
    scores[0, 0, 3, 3] = 0.7
    scores[0, 0, 2, 0] = 0.95
    boxes[0, :, 3, 3] = [-5, -5, 10, 10]  # clipped to the frame
    boxes[0, :, 2, 0] = [30, 30, 50, 40]
    dets = decode((scores, boxes), scale=1.0, pad=(0, 0), frame_hw=(45, 60), threshold=0.5)
    assert [d.score for d in dets] == pytest.approx([0.95, 0.7])
    assert dets[1].box == (0, 0, 10, 10)
    assert dets[0].box == (30, 30, 20, 10)


def test_decode_suppresses_overlapping_second_peak_and_tiny_boxes() -> None:
    scores, boxes = _outputs()
    scores[0, 0, 1, 1] = 0.9
    scores[0, 0, 1, 3] = 0.8  # a second peak on the same wide plate
    scores[0, 0, 3, 0] = 0.8
    boxes[0, :, 1, 1] = [0, 0, 40, 10]
    boxes[0, :, 1, 3] = [2, 0, 42, 10]
    boxes[0, :, 3, 0] = [5, 5, 6, 6]  # 1 px: dropped
    dets = decode((scores, boxes), 1.0, (0, 0), (50, 50), threshold=0.5, nms_iou=0.5)
    assert [d.box for d in dets] == [(0, 0, 40, 10)]


def test_decode_empty_and_bad_shapes() -> None:
    assert decode(_outputs(), 1.0, (0, 0), (10, 10), threshold=0.5) == []
    with pytest.raises(ValueError, match="shapes"):
        decode((np.zeros((1, 1, 4, 4)), np.zeros((1, 3, 4, 4))), 1.0, (0, 0), (10, 10), 0.5)


def test_nms_keeps_best_of_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    keep = nms(boxes, np.array([0.5, 0.9, 0.6], np.float32), 0.5)
    assert keep.tolist() == [1, 2]


# ---------------------------------------------------------------- shipped model


def draw_scene(rng: np.random.Generator, width: int, height: int, plates: list[tuple[int, int, int]],
               text: str = "B 123 ABC") -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A road frame with a car body per plate, drawn with cv2 only; plates as (centre x, centre y, width).
    The text runs past the plate's right edge; with text="" the plates are left blank."""
    img = np.full((height, width, 3), 95, np.uint8)
    img[: height // 2] = (200, 170, 140)  # sky
    noise = rng.normal(0, 4, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    boxes = []
    for cx, cy, pw in plates:
        ph = max(3, round(pw / 4.6))
        cw = int(pw / 0.3)
        cv2.rectangle(img, (cx - cw // 2, cy - int(cw * 0.55)), (cx + cw // 2, cy + int(cw * 0.12)), (40, 40, 160), -1)
        cv2.rectangle(img, (cx - cw // 3, cy - int(cw * 0.5)), (cx + cw // 3, cy - int(cw * 0.3)), (50, 40, 30), -1)
        for lx in (cx - cw // 2 + 4, cx + cw // 2 - 4 - cw // 6):
            cv2.rectangle(img, (lx, cy - int(cw * 0.25)), (lx + cw // 6, cy - int(cw * 0.18)), (20, 20, 230), -1)
        x, y = cx - pw // 2, cy - ph // 2
        cv2.rectangle(img, (x, y), (x + pw, y + ph), (235, 235, 235), -1)
        cv2.rectangle(img, (x, y), (x + max(2, pw // 12), y + ph), (150, 50, 0), -1)  # EU band
        if text:
            cv2.putText(img, text, (x + pw // 9, y + int(ph * 0.8)), cv2.FONT_HERSHEY_SIMPLEX,
                        ph / 32, (15, 15, 15), max(1, ph // 8), cv2.LINE_AA)
        boxes.append((x, y, pw, ph))
    return img, boxes


def paste_plate(img: np.ndarray, box: tuple[int, int, int, int], crop: np.ndarray) -> tuple[int, int, int, int]:
    """Put a plate crop over a blank drawn plate, at the plate's width and the crop's own aspect, centred on
    it; returns the new plate box."""
    x, y, w, h = box
    nh = round(w * crop.shape[0] / crop.shape[1])
    top = y + h // 2 - nh // 2
    img[top : top + nh, x : x + w] = cv2.resize(crop, (w, nh), interpolation=cv2.INTER_AREA)
    return x, top, w, nh


def _xyxy(boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    return np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float64).reshape(-1, 4)


def test_shipped_model_finds_drawn_plates_in_a_1080p_frame() -> None:
    det = PlateDetector(MODEL)
    det.warm_up()
    img, truth = draw_scene(np.random.default_rng(0), 1920, 1080, [(500, 800, 240), (1400, 700, 130)])
    dets = det.detect(img)
    assert dets, "no plate found"
    iou = iou_matrix(_xyxy([d.box for d in dets]), _xyxy(truth))
    assert (iou.max(axis=0) >= 0.5).all(), f"plates not all found: {dets} vs {truth}"
    assert all(0.0 < d.score <= 1.0 for d in dets)


def test_shipped_model_finds_nothing_on_an_empty_road() -> None:
    det = PlateDetector(MODEL)
    img, _ = draw_scene(np.random.default_rng(1), 1280, 720, [])
    assert det.detect(img) == []


def test_detector_reads_its_settings_from_the_sidecar(tmp_path: Path) -> None:
    side = json.loads(MODEL.with_suffix(".json").read_text())
    assert side["input"]["layout"] == "NHWC" and side["input"]["dtype"] == "uint8"
    det = PlateDetector(MODEL, score_threshold=0.42)
    assert det.threshold == 0.42
    assert det.size == tuple(side["input"]["size_hw"])
    model = tmp_path / "det.onnx"
    shutil.copyfile(MODEL, model)
    side["input"]["layout"] = "NCHW"
    model.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="NHWC"):
        PlateDetector(model)
    model.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="sidecar not found"):
        PlateDetector(model)


# ---------------------------------------------------------------- scene renderer (training side)


def test_render_scene_contract() -> None:
    pytest.importorskip("PIL")  # plates are drawn with TTF fonts: a training-only dependency
    from picar.train.scenes import render_scene

    rng = np.random.default_rng(7)
    widths: list[int] = []
    for night in (False, True):
        for _ in range(6):
            img, plates = render_scene(rng, 960, 540, n_plates=3, night=night)
            assert img.shape == (540, 960, 3) and img.dtype == np.uint8
            for plate, (x, y, w, h) in plates:
                assert x >= 0 and y >= 0 and x + w <= 960 and y + h <= 540
                assert 20 <= w <= 200  # 40-400 px at 1920 wide, scaled by 960 / 1920
                assert 0.9 <= w / h <= 6.0
                assert plate.text and plate.image.ndim == 3
                widths.append(w)
    assert len(widths) >= 20
    a, pa = render_scene(np.random.default_rng(3), 640, 360)
    b, pb = render_scene(np.random.default_rng(3), 640, 360)
    assert np.array_equal(a, b) and [p[1] for p in pa] == [p[1] for p in pb]
    day, _ = render_scene(np.random.default_rng(5), 640, 360, n_plates=1, night=False)
    night, _ = render_scene(np.random.default_rng(5), 640, 360, n_plates=1, night=True)
    assert night.mean() < day.mean()


# ---------------------------------------------------------------- tiles for large photos


def test_tile_windows_cover_the_frame_at_the_wanted_scale() -> None:
    assert tile_windows((480, 640), (320, 576), 0.5) == []  # the whole frame is already seen at >= 0.5
    fh, fw = 1280, 1280
    windows = tile_windows((fh, fw), (320, 576), 0.5, overlap=0.3)
    assert len(windows) > 1
    covered = np.zeros((fh, fw), bool)
    for x, y, w, h in windows:
        assert x >= 0 and y >= 0 and x + w <= fw and y + h <= fh
        assert letterbox_geometry((h, w), (320, 576)).scale >= 0.5
        covered[y: y + h, x: x + w] = True
    assert covered.all()
    xs = sorted({x for x, *_ in windows})
    w = windows[0][2]
    assert all(b - a <= 0.7 * w + 1 for a, b in zip(xs, xs[1:], strict=False)), "neighbours overlap by 30%"


def test_detect_tiled_finds_a_small_plate_in_a_big_photo_and_keeps_one_box_per_plate() -> None:
    det = PlateDetector(MODEL)
    # a 5000x1500 panorama: the whole-frame shrink (0.115) leaves the 80 px plate 9 px wide
    img, truth = draw_scene(np.random.default_rng(3), 5000, 1500, [(1200, 1150, 350), (3700, 700, 80)])
    truth = truth[::-1]  # small plate first
    # The scene needs the tiles: shrunk whole into the model's input the small plate is a few pixels wide
    # (whether a given model still guesses it there is that model's business, not asserted here).
    whole_scale = letterbox_geometry(img.shape[:2], det.size).scale
    assert truth[0][2] * whole_scale < 10
    tiled = det.detect_tiled(img, 0.35)
    iou_tiled = iou_matrix(_xyxy([d.box for d in tiled]), _xyxy(truth))
    assert (iou_tiled.max(axis=0) >= 0.5).all(), f"tiled missed a plate: {tiled} vs {truth}"
    hits_per_plate = (iou_tiled >= 0.3).sum(axis=0)
    assert (hits_per_plate == 1).all(), f"duplicate boxes for one plate: {tiled}"


def test_the_whole_frame_pass_is_skipped_only_where_windows_hold_every_plate_it_could_find() -> None:
    size = (320, 576)
    # 1280x960 is seen whole at 0.333: two windows at 0.35 overlap by 868 rows, more than the widest plate
    # the whole view finds (220 px there, 660 px of the photo), and it would be at most 231 px in them (< 400)
    windows = tile_windows((960, 1280), size, 0.35)
    assert [(y, h) for _, y, _, h in windows] == [(0, 914), (46, 914)]
    assert not whole_pass_needed((960, 1280), size, windows)
    # a 4000x3000 photo is seen whole at 0.107: a close-up plate of 2000 px is 214 px there, cut in windows
    assert whole_pass_needed((3000, 4000), size, tile_windows((3000, 4000), size, 0.35))
    # a portrait 720x1280: windows overlap by 548 rows, the whole view's plates reach 880
    assert whole_pass_needed((1280, 720), size, tile_windows((1280, 720), size, 0.35))
    # windows that see far closer than the whole frame would show its biggest plates too big for them
    assert whole_pass_needed((2000, 2800), size, tile_windows((2000, 2800), size, 0.5))
    assert whole_pass_needed((720, 1280), size, [])  # no windows: the whole frame is all there is


def _counting(det: PlateDetector) -> list[tuple[int, ...]]:
    """The input shapes of every model run of `det` from now on (both its sessions: the frame size's, and the
    any-size one `detect_at` uses)."""
    runs: list[tuple[int, ...]] = []
    for session in {id(s): s for s in (det.session, det._any_size_session)}.values():
        def counted(names: list[str], feeds: dict[str, np.ndarray], real: Any = session.run) -> Any:
            runs.append(next(iter(feeds.values())).shape)
            return real(names, feeds)
        session.run = counted  # type: ignore[method-assign]
    return runs


def test_frames_go_to_a_session_fixed_to_the_sidecar_size_and_photos_to_the_any_size_one() -> None:
    det = PlateDetector(MODEL)
    assert det.session is not det._any_size_session
    assert det.session.get_inputs()[0].shape == [1, 320, 576, 3]
    assert det._any_size_session.get_inputs()[0].shape[1:3] == ["height", "width"]
    frame = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    tensor, _, _ = letterbox(frame, det.size)
    fixed, free = (s.run(None, {"image": tensor}) for s in (det.session, det._any_size_session))
    assert all(np.array_equal(a, b) for a, b in zip(fixed, free, strict=True))


def test_a_model_of_any_size_sees_a_big_photo_whole_in_one_input_at_the_wanted_scale(
        monkeypatch: pytest.MonkeyPatch) -> None:
    det = PlateDetector(MODEL)
    assert det.any_size == 16 and det.size == (320, 576)
    runs = _counting(det)
    img, truth = draw_scene(np.random.default_rng(5), 1280, 960, [(640, 60, 150), (300, 900, 120)])
    det.detect_tiled(img, 0.35)
    assert runs == [(1, 320, 576, 3)], "seen whole at 0.333, within MIN_GAIN of 0.35: read as video is"
    monkeypatch.setattr(detector_module, "MIN_GAIN", 1.0)
    runs.clear()
    found = det.detect_tiled(img, 0.35)
    assert runs == [(1, 336, 448, 3)], "1280x960 at 0.35, whole: its plates fit the detector there"
    iou = iou_matrix(_xyxy([d.box for d in found]), _xyxy(truth))
    assert (iou.max(axis=0) >= 0.5).all(), f"a plate at the top or bottom edge was lost: {found} vs {truth}"
    runs.clear()
    det.detect_tiled(img, 0.5)  # a plate of 220 px seen whole (0.333) is 330 px at 0.5: still found there
    assert runs == [(1, 480, 640, 3)]
    runs.clear()
    det.detect_tiled(np.zeros((1280, 1280, 3), np.uint8), 0.5)
    # seen whole at 0.25 a 220 px plate would be 440 px at 0.5, too wide: the whole frame is looked at too
    assert runs == [(1, 640, 640, 3), (1, 320, 576, 3)]
    runs.clear()
    det.detect_tiled(np.zeros((720, 1280, 3), np.uint8), 0.35)
    assert runs == [(1, 320, 576, 3)], "a frame the sidecar's size already sees at 0.45 is read as video is"
    with pytest.raises(ValueError, match="336x450: both sides must be multiples of 16"):
        det.detect_at(img, (336, 450))


def test_windows_where_the_model_takes_one_size_or_the_photo_is_too_big_for_one_input(
        monkeypatch: pytest.MonkeyPatch) -> None:
    det = PlateDetector(MODEL)
    det.any_size = None  # as a model exported for one input size
    runs = _counting(det)
    monkeypatch.setattr(detector_module, "MIN_GAIN", 1.0)
    img, truth = draw_scene(np.random.default_rng(5), 1280, 960, [(640, 60, 150), (300, 900, 120)])
    found = det.detect_tiled(img, 0.35)
    assert len(runs) == 2, "two windows, no whole-frame pass"
    iou = iou_matrix(_xyxy([d.box for d in found]), _xyxy(truth))
    assert (iou.max(axis=0) >= 0.5).all(), f"a plate at the top or bottom edge was lost: {found} vs {truth}"
    runs.clear()
    det.detect_tiled(np.zeros((1280, 720, 3), np.uint8), 0.35)
    assert len(runs) == 3, "two windows and the whole frame"
    with pytest.raises(ValueError, match="takes only 320x576"):
        det.detect_at(img, (336, 448))
    det.any_size = 16
    runs.clear()
    monkeypatch.setattr(detector_module, "MAX_VIEW_PIXELS", 100_000)  # 1280x960 at 0.35 is 150,528 pixels
    assert det.detect_tiled(img, 0.35) == found and len(runs) == 2


def test_a_sidecar_that_claims_any_size_for_a_model_of_one_size_is_refused(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(MODEL))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim[1:3], (320, 576), strict=True):
        dim.dim_value = value
    onnx.save(model, str(tmp_path / "det.onnx"))
    shutil.copy(MODEL.with_suffix(".json"), tmp_path / "det.json")
    with pytest.raises(ModelError, match="takes only"):
        PlateDetector(tmp_path / "det.onnx")
    side = json.loads((tmp_path / "det.json").read_text())
    del side["input"]["any_size_multiple"]
    (tmp_path / "det.json").write_text(json.dumps(side))
    assert PlateDetector(tmp_path / "det.onnx").any_size is None
    side["input"]["any_size_multiple"] = "16"
    (tmp_path / "det.json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="any_size_multiple"):
        PlateDetector(tmp_path / "det.onnx")
