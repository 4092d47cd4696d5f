"""Where the shipped files live: inside the installed package, never relative to a checkout.

`models/` and `config/` keep their top-level folders in the source tree and install as the packages
`picar.models` and `picar.examples` (pyproject.toml), so a wheel carries them and an editable install
finds them in place.
"""

import importlib.util
from pathlib import Path

import picar.examples
import picar.models

MODELS_DIR = Path(picar.models.__file__).resolve().parent
DEFAULT_DETECTOR = MODELS_DIR / "plate_detector.onnx"
DEFAULT_OCR = MODELS_DIR / "plate_ocr.onnx"
EXAMPLE_CONFIG = Path(picar.examples.__file__).resolve().parent / "picar.example.toml"


def _demo_dir() -> Path:
    """The simulator's demo drive (bench's default clip): found, not imported, so picar never loads hw_sim."""
    spec = importlib.util.find_spec("hw_sim")
    if spec is None or not spec.submodule_search_locations:
        return Path("hw_sim") / "demo"  # only `picar demo` and `picar bench`'s default need it
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "demo"


DEMO_DIR = _demo_dir()
