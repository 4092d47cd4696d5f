"""Where the shipped files live: inside the installed package, never relative to a checkout.

`models/` and `config/` keep their top-level folders in the source tree and install as the packages
`picar.models` and `picar.examples` (pyproject.toml), so a wheel carries them and an editable install
finds them in place.
"""

from pathlib import Path

import hw_sim
import picar.examples
import picar.models

MODELS_DIR = Path(picar.models.__file__).resolve().parent
DEFAULT_DETECTOR = MODELS_DIR / "plate_detector.onnx"
DEFAULT_OCR = MODELS_DIR / "plate_ocr.onnx"
EXAMPLE_CONFIG = Path(picar.examples.__file__).resolve().parent / "picar.example.toml"
DEMO_DIR = Path(hw_sim.__file__).resolve().parent / "demo"
