"""onnxruntime sessions with deliberate threading, and the sidecar file that describes each model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort


class ModelError(RuntimeError):
    """A model file or its sidecar is missing or does not describe the model."""


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def load_sidecar(model_path: Path) -> dict[str, Any]:
    path = sidecar_path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if not path.is_file():
        raise ModelError(f"model sidecar not found: {path} (every .onnx ships with a .json beside it)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"model sidecar {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"model sidecar {path} must hold a JSON object")
    return data


def create_session(model_path: Path, threads: int = 1,
                   fixed: dict[str, int] | None = None) -> ort.InferenceSession:
    """A CPU session; `threads` intra-op threads, no inter-op parallelism (no oversubscription). `fixed`
    gives named free input dimensions one value, so the graph is optimised for that shape alone."""
    opts = ort.SessionOptions()
    for name, value in (fixed or {}).items():
        opts.add_free_dimension_override_by_name(name, value)
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc


def warm_up(session: ort.InferenceSession, feeds: dict[str, np.ndarray], runs: int = 2) -> None:
    """Run a few inferences so first-frame latency is not paid on a real plate."""
    for _ in range(runs):
        session.run(None, feeds)
