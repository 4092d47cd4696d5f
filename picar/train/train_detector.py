"""Train the plate detector: `python -m picar.train.train_detector --data ../shared/data --out runs/det`.

Seeded, one torch thread, checkpoint every epoch (`--resume` continues), validation on the real val
splits each epoch (RO dashcam reported separately), then ONNX export (checked against torch, int8 only
when recall holds). `--export-only` redoes the export from the best checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from picar.tools.eval import match_boxes
from picar.train.det_data import RO_SOURCE, CropSampler, DetSample, load_detect_root, read_image
from picar.train.det_model import (
    DEFAULT_CHANNELS,
    STRIDE,
    PlateNet,
    count_macs,
    count_params,
    distances_to_boxes,
    narrowed,
    recalibrate_batch_norms,
)
from picar.train.weights_arg import named_weight
from picar.vision.detector import decode, letterbox

VAL_THRESHOLDS = (0.2, 0.3, 0.4, 0.5)
SELECT_THRESHOLD = 0.3


def parse_channels(text: str) -> tuple[int, int, int, int, int]:
    """'16,24,64,128,40' -> the network's widths (stem, stride 4, 8, 16, top-down path), each 4 to 512."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"channels must be 5 whole numbers with commas, got {text!r}") from exc
    if len(values) != 5 or not all(4 <= v <= 512 for v in values):
        raise argparse.ArgumentTypeError(f"channels {text!r}: 5 widths (stem, /4, /8, /16, top-down), each 4-512")
    return values[0], values[1], values[2], values[3], values[4]


def parse_size(text: str) -> tuple[int, int]:
    """'384x640' -> (384, 640) as (height, width); both multiples of 16."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 384x640 (HxW), got {text!r}") from exc
    if h % 16 or w % 16 or h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be positive multiples of 16")
    return h, w


class Log:
    """Print and append to train.log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with self.path.open("a") as fh:
            fh.write(line + "\n")


# ---------------------------------------------------------------- losses


def focal_loss(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
    """CenterNet penalty-reduced focal loss, normalised by the number of plate centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 0.999
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (~pos) * (~ignore)
    n = pos.sum().clamp(min=1)
    return (pos_loss.sum() + neg_loss.sum()) / n


def giou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted (1 - GIoU) over cells with weight > 0; boxes N4HW x1y1x2y2; weights sum to 1 per plate."""
    mask = weight > 0
    if not bool(mask.any()):
        return pred.sum() * 0.0
    p = pred.permute(0, 2, 3, 1)[mask]
    t = target.permute(0, 2, 3, 1)[mask]
    w = weight[mask]
    ix1, iy1 = torch.maximum(p[:, 0], t[:, 0]), torch.maximum(p[:, 1], t[:, 1])
    ix2, iy2 = torch.minimum(p[:, 2], t[:, 2]), torch.minimum(p[:, 3], t[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    ap = (p[:, 2] - p[:, 0]).clamp(min=0) * (p[:, 3] - p[:, 1]).clamp(min=0)
    at = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = ap + at - inter + 1e-6
    ex1, ey1 = torch.minimum(p[:, 0], t[:, 0]), torch.minimum(p[:, 1], t[:, 1])
    ex2, ey2 = torch.maximum(p[:, 2], t[:, 2]), torch.maximum(p[:, 3], t[:, 3])
    enclose = (ex2 - ex1) * (ey2 - ey1) + 1e-6
    giou = inter / union - (enclose - union) / enclose
    return ((1 - giou) * w).sum() / w.sum().clamp(min=1e-6)


# ---------------------------------------------------------------- validation

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def torch_predictor(model: PlateNet) -> Predictor:
    def run(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            s, b = model(torch.from_numpy(tensor))
        return s.numpy(), b.numpy()

    return run


def validate(
    predict: Predictor, samples: list[DetSample], size: tuple[int, int], images: dict[Path, np.ndarray]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per source and threshold: recall, precision, tp, fp, fn at IoU 0.5 (plus an 'all' source)."""
    counts: dict[str, dict[float, list[int]]] = {}
    buf = np.empty((1, size[0], size[1], 3), np.uint8)
    for s in samples:
        img = images.get(s.path)
        if img is None:
            img = read_image(s.path)[0]
            images[s.path] = img
        h, w = img.shape[:2]
        gt = s.boxes * np.array([w, h, w, h], np.float32)
        tensor, scale, pad = letterbox(img, size, out=buf)
        outputs = predict(tensor)
        dets = decode(outputs, scale, pad, (h, w), min(VAL_THRESHOLDS))
        for src in (s.source, "all"):
            per = counts.setdefault(src, {t: [0, 0, 0] for t in VAL_THRESHOLDS})
            for t in VAL_THRESHOLDS:
                keep = [d for d in dets if d.score >= t]
                pred = np.array([[d.x, d.y, d.x + d.w, d.y + d.h] for d in keep], np.float32).reshape(-1, 4)
                tp, owner = match_boxes(pred, np.array([d.score for d in keep]), gt)
                c = per[t]
                c[0] += int(tp.sum())
                c[1] += int((~tp).sum())
                c[2] += int((owner < 0).sum())
    out: dict[str, dict[str, dict[str, float]]] = {}
    for src, per in counts.items():
        out[src] = {}
        for t, (tp_n, fp_n, fn_n) in per.items():
            out[src][f"{t:.2f}"] = {
                "recall": tp_n / max(tp_n + fn_n, 1),
                "precision": tp_n / max(tp_n + fp_n, 1),
                "tp": tp_n,
                "fp": fp_n,
                "fn": fn_n,
            }
    return out


def selection_score(metrics: dict[str, dict[str, dict[str, float]]]) -> float:
    """Best-checkpoint criterion: RO recall first, then F1 over all val sources, at threshold 0.3."""
    key = f"{SELECT_THRESHOLD:.2f}"
    ro = metrics.get(RO_SOURCE, {}).get(key, {"recall": 0.0})["recall"]
    a = metrics["all"][key]
    f1 = 2 * a["recall"] * a["precision"] / max(a["recall"] + a["precision"], 1e-9)
    return 0.5 * ro + 0.5 * f1


def format_metrics(metrics: dict[str, dict[str, dict[str, float]]], threshold: float = SELECT_THRESHOLD) -> str:
    key = f"{threshold:.2f}"
    parts = []
    for src, per in sorted(metrics.items()):
        m = per[key]
        parts.append(f"{src}: R={m['recall']:.3f} P={m['precision']:.3f} (tp={m['tp']} fp={m['fp']} fn={m['fn']})")
    return f"@{key} " + " | ".join(parts)


# ---------------------------------------------------------------- synthetic scenes


SceneFn = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def synthetic_source(input_hw: tuple[int, int]) -> SceneFn | None:
    """Procedural road scenes with plates (picar.train.scenes), rendered at half 1080p for speed."""
    try:
        from picar.train.scenes import render_scene
    except ImportError:
        return None

    pool: list[tuple[np.ndarray, np.ndarray]] = []

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        # Rendering costs ~40 ms: keep a pool and replace a third of the draws (crops still differ).
        if len(pool) < 96 or rng.random() < 0.35:
            image, plates = render_scene(rng, width=960, height=540)
            boxes = np.array([[x, y, x + w, y + h] for _, (x, y, w, h) in plates], np.float32).reshape(-1, 4)
            if len(pool) < 96:
                pool.append((image, boxes))
            else:
                pool[int(rng.integers(len(pool)))] = (image, boxes)
            return image, boxes
        return pool[int(rng.integers(len(pool)))]

    return draw


# ---------------------------------------------------------------- training


# RO frames are the deployment case (dashcam): over-sampled; the watermarked web photos under-sampled.
DEFAULT_SOURCE_WEIGHTS = {RO_SOURCE: 2.0, "mixed_openlpr_faisalthaheem": 0.6}


def source_weight(text: str) -> tuple[str, float]:
    """`SOURCE=W` on the command line: a detect folder's sampling weight (default 1)."""
    return named_weight(text, what="SOURCE")


def lr_at(step: int, total: int, base: float, warmup: int = 300) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def save_checkpoint(path: Path, state: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(args: argparse.Namespace, log: Log) -> None:
    torch.manual_seed(args.seed)
    samples = load_detect_root(args.data)
    train_s = [s for s in samples if s.split == "train"]
    val_s = [s for s in samples if s.split == "val"]
    by_src: dict[str, list[int]] = {}
    for s in samples:
        by_src.setdefault(f"{s.source}/{s.split}", [0, 0])
        by_src[f"{s.source}/{s.split}"][0] += 1
        by_src[f"{s.source}/{s.split}"][1] += len(s.boxes)
    log(f"data: {json.dumps(by_src)}")
    synth = None if args.no_synthetic else synthetic_source(args.size)
    log(f"synthetic scenes: {f'on, fraction {args.synthetic_fraction:.2f}' if synth else 'off'}")
    sampler = CropSampler(
        train_s, args.size, args.crop, synth, args.synthetic_fraction,
        source_weights={**DEFAULT_SOURCE_WEIGHTS, **dict(args.source_weight)},
        max_plate_px=args.max_plate_px,
    )
    model = PlateNet(args.channels)
    log(f"model: channels {args.channels}, {count_params(model)} params, "
        f"{count_macs(model, *args.size) / 1e6:.1f} MMACs at {args.size}")
    if args.init_onnx is not None and any(n > m for n, m in zip(args.channels, DEFAULT_CHANNELS, strict=True)):
        raise SystemExit(f"--init-onnx starts from the shipped network's widths {DEFAULT_CHANNELS} or fewer, "
                         f"not {args.channels}")
    if args.init_onnx is not None and not (args.resume and (args.out / "last.pt").exists()):
        model = init_from_shipped(args.channels, args.init_onnx, sampler, args, log, val_s)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start_epoch, best = 0, -1.0
    last = args.out / "last.pt"
    if args.resume and last.exists():
        ck = torch.load(last, weights_only=False)
        if tuple(ck.get("channels", DEFAULT_CHANNELS)) != args.channels:
            raise SystemExit(f"{last} has channels {ck.get('channels', DEFAULT_CHANNELS)}, not {args.channels}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_epoch, best = int(ck["epoch"]) + 1, float(ck["best"])
        log(f"resumed from {last} at epoch {start_epoch} (best {best:.4f})")
    total = args.epochs * args.steps
    val_cache: dict[Path, np.ndarray] = {}
    for epoch in range(start_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        model.train()
        t0 = time.time()
        sums = np.zeros(2)
        data_time = 0.0
        for i in range(args.steps):
            step = epoch * args.steps + i
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, args.lr)
            td = time.time()
            imgs, heat, boxes, weight, ignore = sampler.batch(rng, args.batch, STRIDE)
            data_time += time.time() - td
            x = model.normalise(torch.from_numpy(imgs))
            logits, logd = model.features(x)
            l_heat = focal_loss(logits, torch.from_numpy(heat), torch.from_numpy(ignore)[:, None])
            l_box = giou_loss(distances_to_boxes(logd), torch.from_numpy(boxes), torch.from_numpy(weight))
            loss = l_heat + args.box_weight * l_box
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sums += [float(l_heat), float(l_box)]
            if (i + 1) % 50 == 0:
                el = time.time() - t0
                log(
                    f"epoch {epoch} step {i + 1}/{args.steps} heat {sums[0] / (i + 1):.3f} "
                    f"giou {sums[1] / (i + 1):.3f} lr {opt.param_groups[0]['lr']:.2e} "
                    f"{el / (i + 1):.2f}s/step (data {data_time / (i + 1):.2f})"
                )
        model.eval()
        tv = time.time()
        metrics = validate(torch_predictor(model), val_s, args.size, val_cache)
        score = selection_score(metrics)
        log(f"epoch {epoch} val ({time.time() - tv:.0f}s) score {score:.4f} {format_metrics(metrics)}")
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best": best,
                 "metrics": metrics, "size": args.size, "channels": args.channels}
        if score > best:
            best = score
            state["best"] = best
            save_checkpoint(args.out / "best.pt", state)
            log(f"epoch {epoch}: new best {best:.4f}")
        save_checkpoint(last, state)
        log(f"epoch {epoch} done in {time.time() - t0:.0f}s")


def init_from_shipped(widths: tuple[int, int, int, int, int], path: Path, sampler: CropSampler,
                      args: argparse.Namespace, log: Log, val_s: list[DetSample]) -> PlateNet:
    """Start from a shipped detector (its checkpoints gone): its folded convolutions into a network of its
    widths, the batch norms given the statistics of training crops, the stem unfolded; cut to `widths` where
    they are narrower (`narrowed`: each layer keeps its weightiest channels, the statistics measured again);
    validated as it starts."""
    from picar.train.onnx_import import init_named_from_onnx

    rng = np.random.default_rng([args.seed, 10**6])
    batches = [torch.from_numpy(sampler.batch(rng, args.batch, STRIDE)[0]) for _ in range(8)]
    model = PlateNet(DEFAULT_CHANNELS)
    model.folded = True  # the shipped stem carries the 1/std
    n = init_named_from_onnx(model, path, batches)
    model.unfold_input_normalisation()
    if widths != DEFAULT_CHANNELS:
        model = narrowed(model, widths)
        recalibrate_batch_norms(model, batches)
        log(f"cut to channels {widths}: {count_params(model)} params, "
            f"{count_macs(model, *args.size) / 1e6:.1f} MMACs at {args.size}")
    model.eval()
    metrics = validate(torch_predictor(model), val_s, args.size, {})
    log(f"initialised from {path} ({n} convolutions): val score {selection_score(metrics):.4f} "
        f"{format_metrics(metrics)}")
    return model


# ---------------------------------------------------------------- export


def write_sidecar(onnx_path: Path, size: tuple[int, int], threshold: float, extra: dict[str, object]) -> Path:
    """The JSON beside the model: everything the runtime needs (input, outputs, post-processing)."""
    side = {
        "task": "plate_detection",
        "version": extra.pop("version", "det-1"),
        "input": {
            "name": "image",
            "size_hw": list(size),
            "shape": [1, size[0], size[1], 3],
            "dtype": "uint8",
            "layout": "NHWC",
            "colour_order": "BGR",
            "range": "0-255, normalised inside the model",
            "letterbox": {"keep_aspect": True, "align": "centre", "pad_value": 114, "interpolation": "linear"},
            "any_size_multiple": ANY_SIZE_MULTIPLE,
        },
        "stride": STRIDE,
        "outputs": [
            {"name": "scores", "shape": [1, 1, size[0] // STRIDE, size[1] // STRIDE],
             "meaning": "plate-centre probability per stride-4 cell, zero except at 3x3 local maxima"},
            {"name": "boxes", "shape": [1, 4, size[0] // STRIDE, size[1] // STRIDE],
             "meaning": "x1, y1, x2, y2 of the plate centred at that cell, in model-input pixels"},
        ],
        "postprocess": {
            "score_threshold": threshold,
            "peak_nms": "in-graph 3x3 max-pool",
            "nms_iou": 0.5,
            "max_detections": 50,
            "min_box_px": 2,
        },
        "classes": ["plate"],
    }
    side.update(extra)
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(side, indent=2) + "\n")
    return path


def ort_predictor(path: Path) -> Predictor:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, b = sess.run(["scores", "boxes"], {"image": tensor})
        return s, b

    return run


def frame_latency_ms(onnx_path: Path, frame: np.ndarray, runs: int = 100) -> dict[str, float]:
    """Median / p90 ms of PlateDetector.detect (letterbox + ORT, 1 thread + decode) on one frame.

    Also the CPU time of the calling thread (ORT with one intra-op thread runs in it): on a machine
    shared with training jobs, wall time measures the contention; CPU time measures the work."""
    from picar.vision.detector import PlateDetector

    det = PlateDetector(onnx_path, threads=1)
    det.warm_up()
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.thread_time()
        det.detect(frame)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return {"median_ms": float(np.median(wall)), "p90_ms": float(np.percentile(wall, 90)),
            "min_ms": float(np.min(wall)), "cpu_median_ms": float(np.median(cpu))}


# The exported graph takes any input height and width that are multiples of this (the network's stride-16
# features are upsampled twice back to stride 4): the runtime letterboxes video frames into the sidecar's
# size and may look at a still photo whole at the scale it needs (`PlateDetector.detect_tiled`).
ANY_SIZE_MULTIPLE = 16
_SIZED_AXES = {"image": {1: "height", 2: "width"}, "scores": {2: "rows", 3: "cols"}, "boxes": {2: "rows", 3: "cols"}}


def _export_fp32(model: PlateNet, size: tuple[int, int], path: Path) -> None:
    from picar.train.onnx_tools import export_onnx

    dummy = torch.zeros(1, size[0], size[1], 3, dtype=torch.uint8)
    export_onnx(model, dummy, path, ["image"], ["scores", "boxes"], _SIZED_AXES, opset=17)


def reexport(src: Path, out: Path, log: Log) -> Path:
    """The shipped detector exported again from its own weights (`init_named_from_onnx`) as a graph that
    takes any input size; its outputs at the sidecar's size must equal the source's, bit for bit."""
    from picar.train.onnx_import import init_named_from_onnx

    side = json.loads(src.with_suffix(".json").read_text())
    size = (int(side["input"]["size_hw"][0]), int(side["input"]["size_hw"][1]))
    model = PlateNet()
    model.folded = True  # the shipped stem carries the 1/std, as the export wants it
    init_named_from_onnx(model, src)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    dst = out / "plate_detector.onnx"
    _export_fp32(model, size, dst)
    rng = np.random.default_rng(0)
    sample = rng.integers(0, 256, (1, size[0], size[1], 3), dtype=np.uint8)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ort_predictor(src)(sample), ort_predictor(dst)(sample),
                                                          strict=True))
    if diff != 0.0:
        raise RuntimeError(f"{dst}: outputs differ from {src} by {diff} at {size}")
    side["version"] = f"{side['version']}-any-size"
    side["input"]["any_size_multiple"] = ANY_SIZE_MULTIPLE
    side["reexported_from"] = {"file": src.name, "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
                               "max_abs_diff_at_size_hw": diff}
    dst.with_suffix(".json").write_text(json.dumps(side, indent=2) + "\n")
    log(f"reexport: {src} -> {dst}, any size (multiples of {ANY_SIZE_MULTIPLE}), identical at {size}")
    return dst


def _check_matches(model: PlateNet, path: Path, sample: np.ndarray) -> float:
    """Largest |torch - ORT| difference over both outputs."""
    with torch.no_grad():
        ts, tb = model(torch.from_numpy(sample))
    os_, ob = ort_predictor(path)(sample)
    return max(float(np.abs(ts.numpy() - os_).max()), float(np.abs(tb.numpy() - ob).max()) / 100.0)


def _pick_threshold(metrics: dict[str, dict[str, dict[str, float]]], ro_target: float) -> float:
    """Highest validation threshold that keeps RO recall >= target (best all-source F1 among those)."""
    best_t, best_f1 = SELECT_THRESHOLD, -1.0
    for key, m in metrics["all"].items():
        ro = metrics.get(RO_SOURCE, {}).get(key, {"recall": 0.0})["recall"]
        f1 = 2 * m["recall"] * m["precision"] / max(m["recall"] + m["precision"], 1e-9)
        if ro >= ro_target and f1 > best_f1:
            best_t, best_f1 = float(key), f1
    return best_t


def export_best(args: argparse.Namespace, log: Log) -> None:
    """Export the best checkpoint at each candidate size, measure recall and latency, ship the smallest
    size keeping RO val recall >= 0.95 within 10 ms per 1080p frame; int8 only if recall holds."""
    import shutil

    ck = torch.load(args.out / "best.pt", weights_only=False)
    model = PlateNet(tuple(ck.get("channels", DEFAULT_CHANNELS)))
    model.load_state_dict(ck["model"])
    model.eval()
    model.fold_input_normalisation()
    log(f"export: best checkpoint epoch {ck['epoch']}")
    samples = load_detect_root(args.data)
    val_s = [s for s in samples if s.split == "val"]
    calib_s = [s for s in samples if s.split == "train" and s.source == RO_SOURCE][::10]
    calib_s += [s for s in samples if s.split == "train" and s.source != RO_SOURCE][::80]
    ro_val = [s for s in val_s if s.source == RO_SOURCE]
    frame = cv2.resize(read_image(ro_val[0].path)[0], (1920, 1080), interpolation=cv2.INTER_LINEAR)
    cache: dict[Path, np.ndarray] = {}
    results = []
    for text in args.export_sizes.split(","):
        size = parse_size(text)
        path = args.out / f"det_{size[0]}x{size[1]}.onnx"
        _export_fp32(model, size, path)
        tensor, _, _ = letterbox(frame, size)
        diff = _check_matches(model, path, tensor)
        if diff > 1e-3:
            raise RuntimeError(f"{path}: ONNX differs from torch by {diff}")
        metrics = validate(ort_predictor(path), val_s, size, cache)
        write_sidecar(path, size, SELECT_THRESHOLD, {})
        lat = frame_latency_ms(path, frame)
        ro = metrics[RO_SOURCE][f"{SELECT_THRESHOLD:.2f}"]["recall"]
        log(f"export {size}: max|torch-ort| {diff:.2e}, 1080p frame {lat['median_ms']:.2f} ms median "
            f"(p90 {lat['p90_ms']:.2f}); {format_metrics(metrics)}")
        results.append({"size": size, "path": path, "metrics": metrics, "latency": lat, "ro_recall": ro,
                        "max_abs_diff": diff})
    fits = [r for r in results if r["latency"]["median_ms"] <= 10.0] or results
    keeping = [r for r in fits if r["ro_recall"] >= 0.95]
    chosen = min(keeping, key=lambda r: r["size"][0] * r["size"][1]) if keeping else max(
        fits, key=lambda r: r["ro_recall"])
    size, path, metrics = chosen["size"], chosen["path"], chosen["metrics"]
    log(f"export: chose {size} (RO recall {chosen['ro_recall']:.3f}, {chosen['latency']['median_ms']:.2f} ms)")
    shipped, precision = path, "fp32"
    try:
        from picar.train.onnx_tools import quantize_int8

        calib = [letterbox(read_image(s.path)[0], size)[0] for s in calib_s]
        q_path = path.with_name(path.stem + "_int8.onnx")
        quantize_int8(path, q_path, calib)
        q_metrics = validate(ort_predictor(q_path), val_s, size, cache)
        write_sidecar(q_path, size, SELECT_THRESHOLD, {})
        q_lat = frame_latency_ms(q_path, frame)
        log(f"export int8 {size}: {q_lat['median_ms']:.2f} ms; {format_metrics(q_metrics)}")
        key = f"{SELECT_THRESHOLD:.2f}"
        holds = all(
            q_metrics[src][key]["recall"] >= metrics[src][key]["recall"] - 0.01 for src in metrics
        )
        if holds and q_lat["median_ms"] < chosen["latency"]["median_ms"]:
            shipped, precision, metrics, chosen["latency"] = q_path, "int8", q_metrics, q_lat
        else:
            log(f"export: int8 not shipped (recall holds: {holds}, faster: "
                f"{q_lat['median_ms'] < chosen['latency']['median_ms']})")
    except Exception as exc:  # quantisation is optional: the fp32 model is always a valid result
        log(f"export: int8 skipped: {exc!r}")
    # 2 points of margin over the 0.95 target: the RO val split has only 83 plates (1 plate = 1.2 points)
    threshold = _pick_threshold(metrics, 0.97)
    args.models.mkdir(parents=True, exist_ok=True)
    dst = args.models / "plate_detector.onnx"
    shutil.copyfile(shipped, dst)
    write_sidecar(dst, size, threshold, {
        "version": f"det-1-{time.strftime('%Y%m%d')}",
        "precision": precision,
        "trained_epoch": int(ck["epoch"]),
        "params": count_params(model),
        "macs": count_macs(model, *size),
        "latency_1080p_1thread": chosen["latency"],
        "validation": {"iou": 0.5, "metrics": metrics},
        "size_candidates": [
            {"size_hw": list(r["size"]), "ro_recall_at_0.30": r["ro_recall"],
             "latency_median_ms": r["latency"]["median_ms"]} for r in results
        ],
    })
    log(f"export: shipped {dst} ({precision}, {dst.stat().st_size / 1e6:.2f} MB, threshold {threshold})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, required=True, help="root holding detect/<source>/ folders")
    ap.add_argument("--out", type=Path, default=Path("runs/det"))
    ap.add_argument("--epochs", type=int, default=22)
    ap.add_argument("--steps", type=int, default=400, help="optimizer steps per epoch")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256, help="square training crop side (px)")
    ap.add_argument("--size", type=parse_size, default=(384, 640), help="validation input HxW")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--channels", type=parse_channels, default=DEFAULT_CHANNELS, metavar="C1,C2,C3,C4,CH",
                    help="network widths: stem, stride 4, 8, 16, top-down path (default the shipped "
                         f"{','.join(map(str, DEFAULT_CHANNELS))})")
    ap.add_argument("--box-weight", type=float, default=2.0)
    ap.add_argument("--synthetic-fraction", type=float, default=0.3)
    ap.add_argument("--source-weight", type=source_weight, action="append", default=[], metavar="SOURCE=W",
                    help=f"sampling weight of a detect folder (default {DEFAULT_SOURCE_WEIGHTS}, others 1); repeatable")
    ap.add_argument("--max-plate-px", type=float, default=220.0,
                    help="largest plate width (px) the plate-sized half of the crops is scaled to")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--reexport", type=Path, metavar="ONNX",
                    help="only export a shipped detector again, from its own weights, as a graph of any input size "
                         "(into --out)")
    ap.add_argument("--init-onnx", type=Path, metavar="ONNX",
                    help="start from a shipped detector's weights (e.g. models/plate_detector.onnx) to fine-tune it")
    ap.add_argument("--export-only", action="store_true", help="only export the best checkpoint to ONNX")
    ap.add_argument("--export-sizes", default="320x576,352x640,384x640,448x800",
                    help="input sizes to compare at export; the smallest keeping RO recall is chosen")
    ap.add_argument("--models", type=Path, default=Path("models"), help="where the shipped model goes")
    ap.add_argument("--latency", type=Path, metavar="ONNX",
                    help="only time PlateDetector.detect on a 1920x1080 RO val frame (1 thread) and exit")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    if args.latency is not None:
        ro_val = [s for s in load_detect_root(args.data) if s.split == "val" and s.source == RO_SOURCE]
        frame = cv2.resize(read_image(ro_val[0].path)[0], (1920, 1080), interpolation=cv2.INTER_LINEAR)
        lat = frame_latency_ms(args.latency, frame, runs=300)
        print(f"{args.latency}: 1920x1080 frame, letterbox + 1-thread ORT + decode (300 runs): wall median "
              f"{lat['median_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms, min {lat['min_ms']:.2f} ms; "
              f"CPU time median {lat['cpu_median_ms']:.2f} ms")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "train.log")
    if args.reexport is not None:
        reexport(args.reexport, args.out, log)
        return 0
    if not args.export_only:
        train(args, log)
    export_best(args, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
