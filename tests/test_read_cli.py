"""`picar read --json` keeps the contract tools outside the test suite rely on."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

from picar.tools.read import MAX_IMAGE_MEGAPIXELS, PhotoPlate, plate_order
from picar.types import Detection, OcrResult
from tests.test_detector import draw_scene, paste_plate


def run_read(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "picar.cli", "read", *args], capture_output=True, text=True,
                          timeout=120)


def test_json_lines_one_per_image_with_the_documented_fields(tmp_path: Path) -> None:
    img, truth = draw_scene(np.random.default_rng(3), 1280, 720, [(400, 500, 200)])
    scene = tmp_path / "scene.jpg"
    cv2.imwrite(str(scene), img)
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.full((480, 640, 3), 90, np.uint8))
    proc = run_read("--json", "--region", "eu", str(scene), str(empty))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in lines] == [str(scene), str(empty)]
    for r in lines:
        assert set(r) == {"file", "ms", "plates"} and isinstance(r["ms"], float) and r["ms"] > 0
    assert lines[1]["plates"] == []
    (plate,) = lines[0]["plates"]
    assert set(plate) == {"text", "confidence", "series", "box", "candidates"}
    assert plate["series"] is None or plate["series"].split(".")[0] in {"eu", "de", "pl", "ro", "md", "ua", "tr"}
    x, y, w, h = plate["box"]
    assert all(isinstance(v, int) for v in plate["box"])
    tx, ty, tw, th = truth[0]
    assert abs(x - tx) < tw * 0.3 and abs(y - ty) < th and 0.6 < w / tw < 1.5
    assert 0.0 <= plate["confidence"] <= 1.0
    assert plate["candidates"] and all(set(c) == {"text", "confidence"} for c in plate["candidates"])
    assert plate["candidates"][0]["text"] == plate["text"]


def test_bad_files_and_regions_are_clear_errors(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    proc = run_read("--json", str(tmp_path / "missing.jpg"), str(not_image))
    assert proc.returncode == 1
    errors = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["error"] for e in errors] == ["file not found", "not a readable image"]
    assert all(e["plates"] == [] for e in errors)
    proc = run_read("--region", "mars", str(not_image))
    assert proc.returncode == 2 and "unknown plate region 'mars'" in proc.stderr
    proc = run_read("--region", "md,xx", str(not_image))
    assert proc.returncode == 2 and "'xx'" in proc.stderr and "transnistria" in proc.stderr


def test_single_read_gives_the_same_plate_from_one_cut(tmp_path: Path) -> None:
    """On a plate any sane reader reads (a golden crop, tests/data/ocr), one cut and three voted cuts agree."""
    img, blank = draw_scene(np.random.default_rng(3), 1280, 720, [(400, 500, 200)], text="")
    golden = Path(__file__).parent / "data" / "ocr" / "ro_AG71XZP.jpg"
    paste_plate(img, blank[0], cv2.imread(str(golden), cv2.IMREAD_COLOR))
    scene = tmp_path / "scene.jpg"
    cv2.imwrite(str(scene), img)
    voted, single = (run_read("--json", *flags, str(scene)) for flags in ((), ("--single-read",)))
    assert voted.returncode == single.returncode == 0, voted.stderr + single.stderr
    (a,), (b,) = (json.loads(p.stdout)["plates"] for p in (voted, single))
    assert a["box"] == b["box"]
    assert a["text"] == b["text"] == "AG71XZP", (a, b)


def test_threads_change_the_speed_not_the_reads(tmp_path: Path) -> None:
    """The reads of one photo are the same whatever the inference threads; a count below 1 is refused by
    name; the default follows the CPUs this process may run on."""
    img, blank = draw_scene(np.random.default_rng(5), 1280, 960, [(300, 400, 160), (800, 600, 90)], text="")
    golden = Path(__file__).parent / "data" / "ocr" / "ro_AG71XZP.jpg"
    paste_plate(img, blank[0], cv2.imread(str(golden), cv2.IMREAD_COLOR))
    scene = tmp_path / "scene.jpg"
    cv2.imwrite(str(scene), img)
    runs = [run_read("--json", "--threads", n, str(scene)) for n in ("1", "2")]
    assert all(p.returncode == 0 for p in runs), [p.stderr for p in runs]
    one, two = (json.loads(p.stdout)["plates"] for p in runs)
    assert one and one == two
    proc = run_read("--threads", "0", str(scene))
    assert proc.returncode == 2 and "--threads" in proc.stderr and "at least 1" in proc.stderr
    pinned = subprocess.run([sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
                             "from picar.tools.read import photo_threads; print(photo_threads())"],
                            capture_output=True, text=True, timeout=60)
    assert pinned.returncode == 0 and pinned.stdout.strip() == "1", pinned.stderr


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose IHDR (valid CRC) claims width x height, with a token IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 256))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_an_oversize_image_is_refused_by_its_header_and_the_batch_goes_on(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    assert len(bomb.read_bytes()) < 300
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((480, 640, 3), 90, np.uint8))
    proc = run_read("--json", str(bomb), str(good))
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in lines] == [str(bomb), str(good)]
    assert lines[0] == {"file": str(bomb), "plates": [],
                        "error": f"image too large: 100000x100000 pixels (limit {MAX_IMAGE_MEGAPIXELS} megapixels)"}
    assert set(lines[1]) == {"file", "ms", "plates"}
    text = run_read(str(bomb), str(good))
    assert text.returncode == 1 and "bomb.png: error: image too large: 100000x100000 pixels" in text.stderr
    assert "good.png: 0 plate(s)" in text.stdout and "Traceback" not in text.stderr


def _plate(score: float, text: str, confidence: float) -> PhotoPlate:
    return PhotoPlate(Detection(0, 0, 100, 30, score), OcrResult(text, confidence, ()))


def test_a_photos_plates_come_likeliest_first() -> None:
    """A sign the detector likes more than the plate, read unsure, and a bolt read as one character, come
    after the plate read sure: detector score times read confidence, reads shorter than any plate last."""
    sign = _plate(0.70, "B276WO", 0.30)
    bolt = _plate(0.90, "1", 0.99)
    plate = _plate(0.55, "B276WOW", 0.97)
    short_sure = _plate(0.40, "BA1", 0.95)  # as short as a German plate may be: still a plate
    assert sorted([sign, bolt, plate, short_sure], key=plate_order) == [plate, short_sure, sign, bolt]
