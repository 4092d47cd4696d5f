"""Where the shipped files live inside the installed package tree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
DEFAULT_DETECTOR = MODELS_DIR / "plate_detector.onnx"
DEFAULT_OCR = MODELS_DIR / "plate_ocr.onnx"
DEMO_DIR = ROOT / "hw_sim" / "demo"
