"""Generic ONNX helpers for every trained model: export, check ORT against torch, int8 quantisation,
single-thread latency. Nothing here knows about plates or detectors."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from picar.train.int8 import convert_file


def export_onnx(model: torch.nn.Module, dummy_input: torch.Tensor | tuple[torch.Tensor, ...], path: Path,
                input_names: Sequence[str], output_names: Sequence[str],
                dynamic_axes: Mapping[str, Mapping[int, str]] | None = None, opset: int = 17) -> Path:
    """Export `model` (put in eval mode) to ONNX at `path` and validate the graph with the ONNX checker."""
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    args = dummy_input if isinstance(dummy_input, tuple) else (dummy_input,)
    with torch.no_grad():
        torch.onnx.export(
            model, args, str(path), input_names=list(input_names), output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()}, opset_version=opset,
            do_constant_folding=True, dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return path


def _session(path: Path, threads: int = 1) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_onnx_matches(model: torch.nn.Module, path: Path, sample: torch.Tensor, atol: float) -> float:
    """Run `sample` through torch and ORT; raise AssertionError when the first outputs differ by more
    than `atol`. Returns the max absolute difference."""
    model.eval()
    with torch.no_grad():
        ref = model(sample)
    ref_np = (ref[0] if isinstance(ref, tuple | list) else ref).detach().cpu().numpy()
    sess = _session(Path(path))
    got = sess.run(None, {sess.get_inputs()[0].name: sample.detach().cpu().numpy()})[0]
    if got.shape != ref_np.shape:
        raise AssertionError(f"ONNX output shape {got.shape} != torch {ref_np.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - ref_np.astype(np.float64))))
    if diff > atol:
        raise AssertionError(f"ONNX output differs from torch by {diff:.3g} > atol {atol:.3g} ({path})")
    return diff


def quantize_int8(src: Path, dst: Path, calibration: Sequence[np.ndarray] | None = None,
                  percentile: bool = False, float_ends: bool = False) -> Path:
    """Quantise `src` to int8 weights at `dst` with onnxruntime.quantization.

    Static models store their weights as uint8 with zero point 128 (picar/train/int8.py), which reads the
    same on every CPU. Without `calibration` it is dynamic quantisation (weights int8, activations quantised at run
    time: MatMul/Gemm benefit, convolutions stay float). With a list of input batches it is static QDQ
    quantisation of weights and activations, which also speeds up convolutions. `percentile` sets
    activation ranges from the 99.999th percentile instead of min/max, so a few outlier activations do
    not coarsen every other step; `float_ends` leaves the first and last convolution in float (for a
    one-channel stem and a 1x1 classifier both cost little compute).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    prep = dst.with_suffix(".prep.onnx")
    quant_pre_process(str(src), str(prep), skip_symbolic_shape=True)
    try:
        if calibration is None:
            quantize_dynamic(str(prep), str(dst), weight_type=QuantType.QInt8)
        else:
            name = _session(src).get_inputs()[0].name
            batches = list(calibration)

            class _Reader(CalibrationDataReader):
                def __init__(self) -> None:
                    self._it = iter(batches)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    b = next(self._it, None)
                    return None if b is None else {name: b}

            convs = [n.name for n in onnx.load(str(prep)).graph.node if n.op_type == "Conv"]
            quantize_static(str(prep), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True,
                            calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
                            nodes_to_exclude=[convs[0], convs[-1]] if float_ends and convs else None)
            convert_file(dst, dst)  # exact on CPUs without VNNI too (picar/train/int8.py)
    finally:
        prep.unlink(missing_ok=True)
    return dst


def measure_latency(path: Path, sample: np.ndarray, runs: int = 200, threads: int = 1) -> dict[str, float]:
    """Median and p90 wall time (ms) of session.run on `sample` with `threads` intra-op threads."""
    sess = _session(Path(path), threads)
    feeds = {sess.get_inputs()[0].name: sample}
    for _ in range(10):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.array(times)
    n = sample.shape[0]
    return {"batch": float(n), "median_ms": float(np.median(arr)), "p90_ms": float(np.percentile(arr, 90)),
            "median_ms_per_plate": float(np.median(arr) / n)}
