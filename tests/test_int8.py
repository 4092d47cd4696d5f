"""int8 weights stored as uint8 (picar/train/int8.py): exact, and free of the AVX2 int8 saturation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from picar.paths import DEFAULT_OCR
from picar.train.int8 import convert_file, int8_weights, weights_to_uint8

CHANNELS_IN, CHANNELS_OUT = 8, 4


def _qdq_conv(weights: np.ndarray, x_scale: float = 1.0, y_scale: float = 64.0) -> onnx.ModelProto:
    """uint8 image -> DQ -> Conv(int8 per-channel weights, DQ) -> Q -> DQ -> float, as quantize_static writes it."""
    w_scale = np.full(CHANNELS_OUT, 1.0, np.float32)
    inits = [
        numpy_helper.from_array(np.float32(x_scale), "x_scale"), numpy_helper.from_array(np.uint8(0), "x_zp"),
        numpy_helper.from_array(weights.astype(np.int8), "w"), numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(CHANNELS_OUT, np.int8), "w_zp"),
        numpy_helper.from_array(np.float32(y_scale), "y_scale"), numpy_helper.from_array(np.uint8(0), "y_zp"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wf"], axis=0),
        helper.make_node("Conv", ["xf", "wf"], ["yf"], kernel_shape=[1, 1]),
        helper.make_node("QuantizeLinear", ["yf", "y_scale", "y_zp"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "qdq_conv",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, CHANNELS_IN, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS_OUT, 4, 4])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray, optimise: bool) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"x": x})[0])


def test_uint8_weights_dequantise_to_the_same_values() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (CHANNELS_OUT, CHANNELS_IN, 1, 1))
    model = _qdq_conv(w)
    x = rng.integers(0, 256, (1, CHANNELS_IN, 4, 4), dtype=np.uint8)
    before = _run(model, x, optimise=False)
    assert int8_weights(model) == ["w"]
    assert weights_to_uint8(model) == 1 and int8_weights(model) == []
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert inits["w"].dtype == np.uint8 and (inits["w_zp"] == 128).all()
    assert np.array_equal(inits["w"].astype(np.int16) - 128, w)
    assert np.array_equal(_run(model, x, optimise=False), before)


def test_large_products_do_not_saturate_in_the_fused_int8_kernel() -> None:
    # 255 x 127 + 255 x 127 = 64770: more than the 16-bit pair sums of AVX2's VPMADDUBSW hold (32767). The
    # output scale puts the exact sum, 8 x 255 x 127, at 250 of uint8's 255, so a saturated sum would show.
    w = np.full((CHANNELS_OUT, CHANNELS_IN, 1, 1), 127)
    x = np.full((1, CHANNELS_IN, 4, 4), 255, np.uint8)
    exact = CHANNELS_IN * 255 * 127
    model = _qdq_conv(w, y_scale=float(exact) / 250)
    reference = _run(model, x, optimise=False)  # DequantizeLinear + float Conv: no integer kernel
    assert np.allclose(reference, exact, rtol=0.005)
    weights_to_uint8(model)
    fused = _run(model, x, optimise=True)  # QLinearConv, U8U8 on every CPU
    assert np.allclose(fused, reference, rtol=0.005), (fused.ravel()[:4], reference.ravel()[:4])


def test_convert_file_refuses_asymmetric_int8_weights(tmp_path: Path) -> None:
    model = _qdq_conv(np.ones((CHANNELS_OUT, CHANNELS_IN, 1, 1)))
    for init in model.graph.initializer:
        if init.name == "w_zp":
            init.CopyFrom(numpy_helper.from_array(np.full(CHANNELS_OUT, 3, np.int8), "w_zp"))
    onnx.save(model, tmp_path / "asym.onnx")
    with pytest.raises(ValueError, match="'w': zero point is not 0"):
        convert_file(tmp_path / "asym.onnx", tmp_path / "out.onnx")


def test_the_shipped_ocr_takes_the_exact_int8_path() -> None:
    assert int8_weights(onnx.load(str(DEFAULT_OCR))) == [], "int8 conv weights saturate on AVX2-only CPUs"
