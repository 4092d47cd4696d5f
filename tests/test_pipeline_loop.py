"""The loop spends the OCR on plates still undecided: a plate whose pass is reported is not read again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hw_sim.clip_reads import ReadsSink
from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.pipeline.loop import Pipeline
from picar.pipeline.tracker import PlateTracker, TrackerSettings
from picar.types import Frame, OcrResult
from picar.vision.detector import PlateDetector
from picar.vision.ocr import PlateOcr
from tests.test_detector import draw_scene, paste_plate

GOLDEN = Path(__file__).parent / "data" / "ocr"


def golden(name: str) -> np.ndarray:
    crop = cv2.imread(str(GOLDEN / name), cv2.IMREAD_COLOR)
    assert crop is not None, name
    return crop


class CountingReader:
    """The real OCR, counting the crops it is given."""

    def __init__(self) -> None:
        self.ocr = PlateOcr(DEFAULT_OCR)
        self.crops = 0

    def read(self, crops: Sequence[np.ndarray], region: str | Sequence[str] | None = None) -> list[OcrResult]:
        self.crops += len(crops)
        return self.ocr.read(crops, region)


def scene(step: int, second: bool) -> np.ndarray:
    """A 1280x720 frame: a Romanian plate drifting right 6 px a frame; from frame 20 a Moldovan one too."""
    plates = [(300 + 6 * step, 500, 200)] + ([(950, 420, 180)] if second else [])
    img, blank = draw_scene(np.random.default_rng(step), 1280, 720, plates, text="")
    paste_plate(img, blank[0], golden("ro_AG71XZP.jpg"))
    if second:
        paste_plate(img, blank[1], golden("md_ZSRO894.jpg"))
    return img


def test_a_reported_plate_is_not_read_again_and_a_new_one_still_is() -> None:
    reader, sink = CountingReader(), ReadsSink()
    pipeline = Pipeline("car1", PlateDetector(DEFAULT_DETECTOR), reader,
                        PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.6)), sink,
                        lambda read: [], position_at=lambda t: None, region_of=lambda camera: ("ro", "md"))
    for i in range(40):
        t = 1000.0 + i / 30
        pipeline.process(Frame("front", i, t, t, scene(i, second=i >= 20)))
    pipeline.flush(final=True)
    assert [r.text for r in sink.reads] == ["AG71XZP", "ZSRO894"]
    # each plate read until its pass was reported (two frames here), then only tracked
    assert pipeline.counters.detections >= 60
    assert reader.crops + pipeline.counters.settled == pipeline.counters.detections
    assert reader.crops <= 8, reader.crops
