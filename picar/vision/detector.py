"""Plate detector runtime: letterbox a BGR frame, run the ONNX model, decode plate boxes.

The model (see models/plate_detector.json) takes a uint8 NHWC BGR image and returns two stride-4 maps:
`scores` (plate-centre probability, zero except at 3x3 local maxima) and `boxes` (x1, y1, x2, y2 in
input pixels). Everything the runtime needs to know about the model is read from that sidecar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.types import Detection
from picar.vision.session import ModelError, create_session, load_sidecar, warm_up

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Where a frame landed in the model input: input = frame * scale + pad."""

    scale: float
    pad: tuple[int, int]  # (left, top) in input pixels
    resized: tuple[int, int]  # (width, height) of the frame inside the input


def letterbox_geometry(frame_hw: tuple[int, int], size: tuple[int, int]) -> Letterbox:
    """Fit a frame of (height, width) into `size` = (height, width) keeping its aspect, centred."""
    fh, fw = frame_hw
    h, w = size
    if fh <= 0 or fw <= 0:
        raise ValueError(f"frame size must be positive, got {fw}x{fh}")
    scale = min(w / fw, h / fh)
    nw, nh = max(1, min(w, round(fw * scale))), max(1, min(h, round(fh * scale)))
    return Letterbox(scale, ((w - nw) // 2, (h - nh) // 2), (nw, nh))


def letterbox(
    image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize a BGR uint8 image into a (1, H, W, 3) uint8 tensor of `size` = (H, W), padded with grey.

    Returns (tensor, scale, (pad_left, pad_top)): a frame pixel x maps to x * scale + pad_left.
    `out`, if given, is a (1, H, W, 3) uint8 buffer that is filled and returned (no allocation).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got shape {image.shape} dtype {image.dtype}")
    h, w = size
    if out is None:
        out = np.empty((1, h, w, 3), np.uint8)
    elif out.shape != (1, h, w, 3) or out.dtype != np.uint8:
        raise ValueError(f"letterbox buffer must be (1, {h}, {w}, 3) uint8, got {out.shape} {out.dtype}")
    geo = letterbox_geometry(image.shape[:2], size)
    nw, nh = geo.resized
    px, py = geo.pad
    canvas = out[0]
    if nw != w or nh != h:
        canvas[:py] = PAD_VALUE
        canvas[py + nh :] = PAD_VALUE
        canvas[py : py + nh, :px] = PAD_VALUE
        canvas[py : py + nh, px + nw :] = PAD_VALUE
    target = canvas[py : py + nh, px : px + nw]
    if (nw, nh) == (image.shape[1], image.shape[0]):
        target[...] = image
    else:
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        target[...] = resized
    return out, geo.scale, geo.pad


def tile_windows(frame_hw: tuple[int, int], size: tuple[int, int], min_scale: float,
                 overlap: float = 0.3) -> list[tuple[int, int, int, int]]:
    """Windows (x, y, w, h) of the frame that the model sees at a letterbox scale of at least `min_scale`,
    overlapping by `overlap` so that a plate cut by one window's edge is whole in its neighbour.
    Empty when the whole frame already fits at that scale."""
    fh, fw = frame_hw
    h, w = size
    if letterbox_geometry(frame_hw, size).scale >= min_scale:
        return []
    th, tw = min(fh, int(h / min_scale)), min(fw, int(w / min_scale))

    def starts(total: int, tile: int) -> list[int]:
        if tile >= total:
            return [0]
        step = max(1, int(tile * (1 - overlap)))
        n = -(-(total - tile) // step) + 1
        return [round(i * (total - tile) / (n - 1)) for i in range(n)]

    return [(x, y, tw, th) for y in starts(fh, th) for x in starts(fw, tw)]


# `detect_tiled` looks closer only where that shows the photo at least this much larger than the whole-frame
# view: a smaller step finds few more plates (Open Images: 2 of 374, Romanian val 1 of 60) and would cost a
# 1280x720 frame, seen whole at 0.444, a 640x368 input at 0.5 instead of its 320x576.
MIN_GAIN = 1.15

# A photo is looked at whole in one input of at most this many pixels (a 16-megapixel photo at 0.5 fits;
# memory about 50 bytes a pixel); a larger one in windows of the sidecar's size.
MAX_VIEW_PIXELS = 4_000_000

# Plate widths the detector knows, in model-input pixels: its training crops are 256 px square
# (`picar.train.train_detector --crop`) with plates up to 220 px wide (`--max-plate-px`); it still finds most
# wider ones (Open Images plates over 400 px at its input: 9 of 12, models/README.detector.md "Limits").
WIDEST_TRAINED_PX = 220
WIDEST_SEEN_PX = 400


def outgrows(whole: float, closer: float) -> bool:
    """Whether a plate the whole-frame view (at scale `whole`) can find may be too wide for the detector in a
    view at scale `closer`: up to WIDEST_TRAINED_PX there, more than WIDEST_SEEN_PX here."""
    return closer * WIDEST_TRAINED_PX > whole * WIDEST_SEEN_PX


def sized_view(frame_hw: tuple[int, int], min_scale: float, multiple: int) -> tuple[int, int]:
    """The input size (height, width; multiples of `multiple`) that sees the whole frame at `min_scale`."""
    return tuple(max(multiple, -(-round(side * min_scale) // multiple) * multiple)  # type: ignore[return-value]
                 for side in frame_hw)


def whole_pass_needed(frame_hw: tuple[int, int], size: tuple[int, int],
                      windows: list[tuple[int, int, int, int]]) -> bool:
    """Whether `detect_tiled` must also look at the whole frame: yes without windows; no when every
    plate the whole-frame view could find (up to WIDEST_TRAINED_PX there) is whole in some window
    (neighbours overlap by more than its width) and no wider than WIDEST_SEEN_PX in it."""
    if not windows:
        return True
    whole = letterbox_geometry(frame_hw, size).scale
    if outgrows(whole, letterbox_geometry((windows[0][3], windows[0][2]), size).scale):
        return True
    reach = WIDEST_TRAINED_PX / whole
    for axis in (0, 1):  # x, then y
        starts = sorted({win[axis] for win in windows})
        extent = windows[0][axis + 2]
        if any(extent - (b - a) < reach for a, b in zip(starts, starts[1:], strict=False)):
            return True
    return False


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of boxes (x1, y1, x2, y2) kept by greedy IoU suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        iy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        ix2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        iy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(ix2 - ix1, 0) * np.maximum(iy2 - iy1, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    outputs: tuple[np.ndarray, np.ndarray] | list[np.ndarray],
    scale: float,
    pad: tuple[int, int],
    frame_hw: tuple[int, int],
    threshold: float,
    nms_iou: float = 0.5,
    max_detections: int = 50,
    min_size: int = 2,
) -> list[Detection]:
    """Model outputs (scores (1,1,h,w), boxes (1,4,h,w) in input px) -> Detections in frame pixels.

    Peaks are already local maxima (in-graph 3x3 max-pool); an IoU NMS removes the second peak a wide
    plate can produce. Boxes are clipped to the frame; boxes smaller than `min_size` px are dropped.
    """
    scores, boxes = outputs[0], outputs[1]
    if scores.ndim != 4 or boxes.ndim != 4 or boxes.shape[1] != 4 or scores.shape[2:] != boxes.shape[2:]:
        raise ValueError(f"unexpected detector output shapes {scores.shape} and {boxes.shape}")
    flat = scores[0, 0].ravel()
    idx = np.flatnonzero(flat >= threshold)
    if idx.size == 0:
        return []
    if idx.size > 4 * max_detections:
        idx = idx[np.argpartition(-flat[idx], 4 * max_detections)[: 4 * max_detections]]
    sel = flat[idx].astype(np.float32)
    b = boxes[0].reshape(4, -1)[:, idx].T.astype(np.float32)
    b[:, 0::2] -= pad[0]
    b[:, 1::2] -= pad[1]
    b /= scale
    fh, fw = frame_hw
    np.clip(b[:, 0::2], 0, fw, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0, fh, out=b[:, 1::2])
    keep = nms(b, sel, nms_iou)[:max_detections]
    result: list[Detection] = []
    for i in keep:
        x1, y1, x2, y2 = (int(round(float(v))) for v in b[i])
        if x2 - x1 >= min_size and y2 - y1 >= min_size:
            result.append(Detection(x1, y1, x2 - x1, y2 - y1, float(sel[i])))
    return result


def _require(side: dict[str, Any], *keys: str) -> Any:
    node: Any = side
    path = []
    for key in keys:
        path.append(key)
        if not isinstance(node, dict) or key not in node:
            raise ModelError(f"detector sidecar is missing '{'.'.join(path)}'")
        node = node[key]
    return node


class PlateDetector:
    """One ONNX session plus pre-allocated buffers; `detect` turns a BGR frame into plate boxes.

    The input buffer is reused on every call, so one detector belongs to one worker thread."""

    def __init__(self, model_path: Path, threads: int = 1, score_threshold: float | None = None) -> None:
        model_path = Path(model_path)
        side = load_sidecar(model_path)
        if side.get("task") != "plate_detection":
            raise ModelError(f"{model_path.with_suffix('.json')} is not a plate detector sidecar")
        inp = _require(side, "input")
        if inp.get("layout") != "NHWC" or inp.get("dtype") != "uint8" or inp.get("colour_order") != "BGR":
            raise ModelError(f"detector input must be NHWC uint8 BGR, sidecar says {inp}")
        self.input_name = str(_require(side, "input", "name"))
        h, w = (int(v) for v in _require(side, "input", "size_hw"))
        self.size = (h, w)
        self.output_names = [str(o["name"]) for o in _require(side, "outputs")]
        post = _require(side, "postprocess")
        self.threshold = float(post["score_threshold"] if score_threshold is None else score_threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, got {self.threshold}")
        self.nms_iou = float(post["nms_iou"])
        self.max_detections = int(post["max_detections"])
        self.min_size = int(post.get("min_box_px", 2))
        self.version = str(side.get("version", ""))
        any_size = inp.get("any_size_multiple")
        if any_size is not None and (isinstance(any_size, bool) or not isinstance(any_size, int) or any_size < 1):
            raise ModelError(f"detector sidecar field 'input.any_size_multiple' must be a whole number, "
                             f"got {any_size!r}")
        self.any_size: int | None = any_size  # the model takes any input size in multiples of this
        self.session = create_session(model_path, threads)
        got = [i.name for i in self.session.get_inputs()]
        if got != [self.input_name]:
            raise ModelError(f"{model_path}: model inputs {got} do not match sidecar input '{self.input_name}'")
        dims = self.session.get_inputs()[0].shape
        if self.any_size is not None and all(isinstance(d, int) for d in dims[1:3]):
            raise ModelError(f"{model_path}: the sidecar says any input size, the model takes only {dims}")
        # Frames go in at the sidecar's size: a session optimised for that shape alone (about 3 % faster than
        # the any-size graph); the any-size one stays for `detect_at`.
        self._any_size_session = self.session
        free = {str(d): v for d, v in zip(dims[1:3], (h, w), strict=True) if isinstance(d, str)}
        if free:
            self.session = create_session(model_path, threads, fixed=free)
        self._buffer = np.full((1, h, w, 3), PAD_VALUE, np.uint8)
        self.last_preprocess_ms = 0.0  # resize + letterbox of the last frame, for the loop's stage timing

    def warm_up(self) -> None:
        """Run the model twice on a grey frame so the first real frame is not slow."""
        self._buffer[...] = PAD_VALUE
        warm_up(self.session, {self.input_name: self._buffer})

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Plates in one BGR frame of any size; boxes in that frame's pixels, best score first."""
        t0 = time.perf_counter()
        tensor, scale, pad = letterbox(image, self.size, out=self._buffer)
        self.last_preprocess_ms = (time.perf_counter() - t0) * 1000.0
        outputs = self.session.run(self.output_names, {self.input_name: tensor})
        return decode(
            (outputs[0], outputs[1]),
            scale,
            pad,
            (image.shape[0], image.shape[1]),
            self.threshold,
            self.nms_iou,
            self.max_detections,
            self.min_size,
        )

    def detect_at(self, image: np.ndarray, size: tuple[int, int]) -> list[Detection]:
        """`detect` with the frame letterboxed into an input of `size` (height, width) instead of the
        sidecar's: only for a model that takes any size (`any_size`, multiples of it)."""
        if self.any_size is None:
            raise ValueError(f"this detector takes only {self.size[0]}x{self.size[1]} inputs, not {size[0]}x{size[1]}")
        if size[0] % self.any_size or size[1] % self.any_size:
            raise ValueError(f"input size {size[0]}x{size[1]}: both sides must be multiples of {self.any_size}")
        tensor, scale, pad = letterbox(image, size)
        outputs = self._any_size_session.run(self.output_names, {self.input_name: tensor})
        return decode((outputs[0], outputs[1]), scale, pad, (image.shape[0], image.shape[1]), self.threshold,
                      self.nms_iou, self.max_detections, self.min_size)

    def detect_tiled(self, image: np.ndarray, min_scale: float = 0.5) -> list[Detection]:
        """For still photos larger than the model input: the photo seen at a scale of at least `min_scale`
        (where that is MIN_GAIN larger than the sidecar's input sees it), so small plates survive that the
        whole-frame shrink would lose. A model of any size takes the photo whole in one input of its shape
        (`detect_at`, up to MAX_VIEW_PIXELS), plus the sidecar's view where that could find plates too wide
        for the closer one (`outgrows`); otherwise overlapping windows of the sidecar's size, plus the whole
        frame unless every plate it could find is whole in some window (`whole_pass_needed`). Boxes of all
        views merged by NMS."""
        fh, fw = image.shape[:2]
        whole = letterbox_geometry((fh, fw), self.size).scale
        if whole * MIN_GAIN >= min_scale:
            return self.detect(image)
        if self.any_size is not None:
            view = sized_view((fh, fw), min_scale, self.any_size)
            if view[0] * view[1] <= MAX_VIEW_PIXELS:
                found = self.detect_at(image, view)
                if outgrows(whole, letterbox_geometry((fh, fw), view).scale):
                    found += self.detect(image)
                return self._merged(found)
        windows = tile_windows((fh, fw), self.size, min_scale)
        found = self.detect(image) if whole_pass_needed((fh, fw), self.size, windows) else []
        for x, y, w, h in windows:
            for d in self.detect(np.ascontiguousarray(image[y: y + h, x: x + w])):
                # A box touching an edge inside the frame is likely a cut plate: it is whole elsewhere.
                cut = ((d.x <= 1 and x > 0) or (d.y <= 1 and y > 0) or (d.x + d.w >= w - 1 and x + w < fw)
                       or (d.y + d.h >= h - 1 and y + h < fh))
                if not cut:
                    found.append(Detection(d.x + x, d.y + y, d.w, d.h, d.score))
        return self._merged(found)

    def _merged(self, found: list[Detection]) -> list[Detection]:
        """Boxes of several views of one frame, one per plate (NMS), best score first."""
        if not found:
            return found
        boxes = np.array([[d.x, d.y, d.x + d.w, d.y + d.h] for d in found], np.float32)
        scores = np.array([d.score for d in found], np.float32)
        return [found[i] for i in nms(boxes, scores, self.nms_iou)[: self.max_detections]]
