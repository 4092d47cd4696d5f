"""The committed demo drive (hw_sim/demo): the video, track and watchlist agree with expected.json,
and, once the models are committed, the real detector and OCR read the plates that should hit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hw_sim.make_demo import read_drive
from hw_sim.track import load_track
from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR, DEMO_DIR
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.io import read_csv


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads((DEMO_DIR / "expected.json").read_text(encoding="utf-8"))


def _watch_records() -> list[dict[str, Any]]:
    """The demo's list as HQ imports it (`picar watchlist import`): a Moldovan HQ's CSV."""
    return read_csv(DEMO_DIR / "watchlist.csv")


def test_assets_are_small_enough_for_the_repo() -> None:
    total = sum(p.stat().st_size for p in DEMO_DIR.iterdir() if p.is_file())
    assert total < 4 * 1024 * 1024, f"hw_sim/demo holds {total} bytes"


def test_video_matches_expected(expected: dict[str, Any]) -> None:
    cap = cv2.VideoCapture(str(DEMO_DIR / expected["video"]))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(expected["fps"], abs=0.01)
    n = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (expected["height"], expected["width"], 3), f"frame {n}"
            n += 1
    finally:
        cap.release()
    assert n == expected["frames"]


def test_expected_boxes_are_consistent(expected: dict[str, Any]) -> None:
    w, h, fps = expected["width"], expected["height"], expected["fps"]
    styles = set()
    for v in expected["vehicles"]:
        boxes = v["boxes"]
        frames = [b[0] for b in boxes]
        assert frames == sorted(frames) and len(frames) == len(set(frames)) == v["frames_visible"]
        assert (frames[0], frames[-1]) == (v["first_frame"], v["last_frame"])
        assert 0 <= v["first_frame"] <= v["last_frame"] < expected["frames"]
        for _f, x, y, bw, bh in boxes:
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
            assert bw >= expected["min_visible_px"]
        widths = [b[3] for b in boxes]
        assert v["box_width_px"] == [min(widths), max(widths)]
        assert 0.5 * fps <= len(boxes), f"{v['plate']} is visible for too short a time"
        styles.add(v["style"])
    assert len(expected["vehicles"]) >= 8
    assert len(styles) >= 6
    assert any(v["rows"] == 2 for v in expected["vehicles"])
    assert max(v["box_width_px"][1] for v in expected["vehicles"]) >= 150


def test_largest_plate_is_in_the_video_where_expected(expected: dict[str, Any]) -> None:
    """The box of each plate at its largest frame holds plate-like contrast (dark glyphs on a light plate)."""
    cap = cv2.VideoCapture(str(DEMO_DIR / expected["video"]))
    try:
        for v in expected["vehicles"]:
            f = v["largest_frame"]
            box = next(b for b in v["boxes"] if b[0] == f)
            cap.set(cv2.CAP_PROP_POS_FRAMES, f)
            ok, frame = cap.read()
            assert ok, f"cannot read frame {f}"
            _f, x, y, bw, bh = box
            gray = cv2.cvtColor(frame[y:y + bh, x:x + bw], cv2.COLOR_BGR2GRAY)
            lo, hi = np.percentile(gray, [10, 90])
            assert hi - lo > 60, f"{v['plate']} frame {f}: box {box} has no plate contrast ({lo}..{hi})"
    finally:
        cap.release()


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def test_track_is_a_plausible_drive_in_chisinau(expected: dict[str, Any]) -> None:
    points = load_track(DEMO_DIR / expected["track"])  # raises on non-increasing times or bad values
    assert points[0].t_s == 0
    assert points[-1].t_s >= expected["frames"] / expected["fps"]
    for a, b in zip(points, points[1:], strict=False):
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        assert 46.98 < b.lat < 47.06 and 28.78 < b.lon < 28.90, "outside central Chisinau"
        assert 0 <= b.speed_kmh <= 60
        # distance between fixes agrees with the reported speeds
        moved = _haversine_m(a.lat, a.lon, b.lat, b.lon)
        mean_speed = (a.speed_kmh + b.speed_kmh) / 2 / 3.6
        assert moved == pytest.approx(mean_speed * (b.t_s - a.t_s), abs=0.3)
    assert max(p.speed_kmh for p in points) >= 40
    assert min(p.speed_kmh for p in points) == 0  # the stop at the red light


def test_watchlist_is_a_moldovan_list_in_romanian_with_cyrillic_texts() -> None:
    raw = (DEMO_DIR / "watchlist.csv").read_text(encoding="utf-8")
    assert raw.startswith("Număr de înmatriculare,")
    assert "К ВА 257" in raw  # a plate typed in Cyrillic look-alikes, imported as KBA257
    recs = _watch_records()
    assert any(r["plate"] == "KBA257" for r in recs)
    assert any(re.search("[а-яА-Я]", r.get("description", "")) for r in recs)


def test_watchlist_hits_are_the_expected_vehicles(expected: dict[str, Any]) -> None:
    recs = _watch_records()
    builder = WatchlistBuilder()
    for i, rec in enumerate(recs, start=2):
        assert "effective" not in rec
        assert rec.get("expires", "2031") > "2030"
        builder.add_record(rec, f"watchlist.csv:{i}")
    wl = builder.build()
    assert len(wl) >= 20
    hits = {v["plate"]: v["watchlist"] for v in expected["vehicles"] if v["watchlist"]}
    assert {h["match"] for h in hits.values()} == {"exact", "confusable"}
    assert sum(h["covert"] for h in hits.values()) == 1
    listed = {r["plate"] for r in recs}
    at = None
    for v in expected["vehicles"]:
        found = wl.match([(v["plate"], 1.0)], at=at)
        want = v["watchlist"]
        if want is None:
            assert found == [], f"{v['plate']} should hit nothing, hits {found}"
            continue
        assert want["plate"] in listed
        assert len(found) == 1, f"{v['plate']}: {found}"
        entry, match = found[0]
        assert (entry.plate, entry.list, entry.priority, entry.covert) == (
            want["plate"], want["list"], want["priority"], want["covert"])
        assert match.kind == want["match"]


# --------------------------------------------------------------------------- the real models


def test_models_read_the_hit_plates(expected: dict[str, Any]) -> None:
    """On the five frames where each hit plate is largest, the detector finds it and its text is among
    the OCR's candidates at least once (the daemon votes over many more frames than this)."""
    assert DEFAULT_DETECTOR.is_file() and DEFAULT_OCR.is_file(), "the shipped models are missing"
    from picar.vision.detector import PlateDetector
    from picar.vision.ocr import PlateOcr

    hits = [v for v in expected["vehicles"] if v["watchlist"]]
    frames = {b[0] for v in hits for b in sorted(v["boxes"], key=lambda b: -b[3])[:5]}
    reads, _stray = read_drive(DEMO_DIR, PlateDetector(Path(DEFAULT_DETECTOR)), PlateOcr(Path(DEFAULT_OCR)),
                               frames)
    for v in hits:
        r = reads[v["id"]]
        assert r.detected > 0, f"{v['plate']}: not detected in frames {sorted(frames)}"
        assert r.in_candidates > 0, f"{v['plate']}: the OCR read {r.texts}"


# --------------------------------------------------------------------------- the generator still makes these


def test_generator_writes_the_committed_track_and_watchlist(tmp_path: Path, expected: dict[str, Any]) -> None:
    from hw_sim import make_demo

    make_demo.write_track(tmp_path / "track.csv")
    make_demo.write_watchlist(tmp_path / "watchlist.csv", make_demo.watchlist_rows(expected["seed"]))
    for name in ("track.csv", "watchlist.csv"):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), (
            f"{name} differs from what hw_sim/make_demo.py writes; regenerate: {expected['command']}")


def test_generator_renders_the_committed_video(expected: dict[str, Any]) -> None:
    """One frame rendered now matches the committed one (the street and cars; codec losses allowed)."""
    from hw_sim import make_demo

    index = 40
    world = make_demo.make_world(expected["seed"])
    frame, placed = make_demo.render_frame(world, index, np.random.default_rng(0))
    cap = cv2.VideoCapture(str(DEMO_DIR / expected["video"]))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, committed = cap.read()
    finally:
        cap.release()
    assert ok
    psnr = cv2.PSNR(frame, committed)
    assert psnr > 30, f"frame {index} differs from the committed video (PSNR {psnr:.1f} dB); regenerate: " \
                      f"{expected['command']}"
    for v in expected["vehicles"]:
        box = next((b[1:] for b in v["boxes"] if b[0] == index), None)
        got = make_demo.visible_box(v["id"], placed)
        assert (got is None) == (box is None), v["id"]
        if box is not None and got is not None:
            assert max(abs(a - b) for a, b in zip(got, box, strict=True)) <= 2, (v["id"], got, box)
