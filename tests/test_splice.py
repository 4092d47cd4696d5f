"""Spliced training plates (picar.train.splice): the letters of one crop joined to the digits of
another, cut where the shipped reader's CTC frames say, must read as the new plate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from picar.train.plates import render_plate
from picar.train.splice import Splicer, find_splice_points, splice
from picar.vision.ocr import PlateOcr

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "plate_ocr.onnx"


@dataclass
class Crop:
    dataset: str
    image: np.ndarray
    text: str


def _crop(style: str, text: str, seed: int, label: str | None = None) -> Crop:
    plate = render_plate(np.random.default_rng(seed), style, text=text)
    return Crop("br", plate.image, label or text)


def test_letters_of_one_plate_join_the_digits_of_another_and_read_as_the_new_plate() -> None:
    crops = [_crop("br_old", "ABC1234", 1), _crop("br_old", "XYZ5678", 2), _crop("br_old", "KLM9012", 3)]
    points = find_splice_points(SHIPPED, crops)
    assert [p.text for p in points] == ["ABC1234", "XYZ5678", "KLM9012"]
    assert all(p.cut == 3 for p in points)
    ocr = PlateOcr(SHIPPED)
    height, width, _ = ocr.input_shape
    rng = np.random.default_rng(0)
    for a, b, want in ((0, 1, "ABC5678"), (1, 2, "XYZ9012"), (2, 0, "KLM1234")):
        assert width * 0.25 < points[a].at < width * 0.6  # the gap after three of seven characters
        img, text = splice(points[a], points[b], rng)
        assert text == want and img.shape == (height, width) and img.dtype == np.uint8
        assert ocr.read([img])[0].text == want


def test_only_exact_one_row_letters_then_digits_reads_are_kept() -> None:
    crops = [
        _crop("br_old", "ABC1234", 1, label="ABC1235"),  # the label disagrees with the read
        _crop("ro", "B123ABC", 4),  # digits before letters
        _crop("eu_square", "AB123CD", 5),  # two rows
        _crop("br_old", "XYZ5678", 2),
    ]
    assert [p.text for p in find_splice_points(SHIPPED, crops)] == ["XYZ5678"]


def test_a_set_needs_two_splittable_crops() -> None:
    one = find_splice_points(SHIPPED, [_crop("br_old", "ABC1234", 1)])
    splicer = Splicer(one)
    rng = np.random.default_rng(0)
    assert splicer("br", rng) is None
    assert splicer("us", rng) is None
    two = Splicer(one + find_splice_points(SHIPPED, [_crop("br_old", "XYZ5678", 2)]))
    img, text = two("br", rng)  # type: ignore[misc]
    assert text in ("ABC5678", "XYZ1234")


def test_a_slot_reader_cannot_give_splice_points(tmp_path: Path) -> None:
    from tests.test_ocr import _tiny_model  # a fixed-slot model with no CTC frames

    with pytest.raises(ValueError, match="CTC reader"):
        find_splice_points(_tiny_model(tmp_path), [_crop("br_old", "ABC1234", 1)])
