"""int8 models that compute the same on every x86 CPU.

onnxruntime runs a QDQ convolution with uint8 activations and int8 weights (U8S8) through the CPU's best
int8 instruction: VNNI's VPDPBUSD sums in 32 bits, but AVX2 and AVX-512 without VNNI use VPMADDUBSW,
which adds pairs of products into 16 bits and saturates when both are large (255 x 127 x 2 > 32767).
Many vehicle computers have AVX2 only, so the same model would read differently on them. Stored as
uint8 with a zero point of 128, the very same weights take onnxruntime's U8U8 kernels, which widen to
16 bits before multiplying and never saturate: the conversion is exact and the arithmetic is the same
on every CPU. Measured in models/README.ocr.md (`scripts/ocr-cpu-check`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

UINT8_ZERO_POINT = 128


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in model.graph.initializer}


def _dequantizes_int8_weight(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    w = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
    return w is not None and w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4


def int8_weights(model: onnx.ModelProto) -> list[str]:
    """Names of the int8 convolution weights that feed a DequantizeLinear (the U8S8 path)."""
    inits = _initializers(model)
    return [n.input[0] for n in model.graph.node if _dequantizes_int8_weight(n, inits)]


def weights_to_uint8(model: onnx.ModelProto) -> int:
    """Store every int8 convolution weight as uint8 + 128 with zero point 128, in place; returns how many.

    Exact: q_u8 - 128 == q_s8 for every weight, so every dequantised value is unchanged.
    """
    inits = _initializers(model)
    converted = 0
    for node in model.graph.node:
        if not _dequantizes_int8_weight(node, inits):
            continue
        if len(node.input) < 3 or node.input[2] not in inits:
            raise ValueError(f"DequantizeLinear {node.name!r}: int8 weight {node.input[0]!r} has no zero point")
        weight, zero = inits[node.input[0]], inits[node.input[2]]
        zp = numpy_helper.to_array(zero)
        if np.any(zp != 0):
            raise ValueError(f"weight {weight.name!r}: zero point is not 0 (symmetric int8 expected)")
        q = numpy_helper.to_array(weight).astype(np.int16) + UINT8_ZERO_POINT
        weight.CopyFrom(numpy_helper.from_array(q.astype(np.uint8), weight.name))
        zero.CopyFrom(numpy_helper.from_array(np.full(zp.shape, UINT8_ZERO_POINT, np.uint8), zero.name))
        converted += 1
    return converted


def convert_file(src: Path, dst: Path) -> int:
    """weights_to_uint8 on a model file; writes `dst` and returns how many weights changed."""
    model = onnx.load(str(src))
    n = weights_to_uint8(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return n


if __name__ == "__main__":  # python -m picar.train.int8 SRC.onnx DST.onnx
    if len(sys.argv) != 3:
        print("usage: python -m picar.train.int8 SRC.onnx DST.onnx", file=sys.stderr)
        sys.exit(2)
    print(f"{convert_file(Path(sys.argv[1]), Path(sys.argv[2]))} int8 convolution weights stored as uint8")
