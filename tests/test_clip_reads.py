"""`python -m hw_sim.clip_reads`: a clip's reads at its own timing, the same run to run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DRIVE = Path(__file__).resolve().parent.parent / "hw_sim" / "demo" / "drive.mp4"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hw_sim.clip_reads", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_demo_drives_first_seconds_read_the_same_twice_and_reported_plates_are_not_read_again() -> None:
    first, second = run(str(DRIVE), "--frames", "90"), run(str(DRIVE), "--frames", "90")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stderr == second.stderr
    reads = [json.loads(line) for line in first.stdout.splitlines()]
    assert {"CDK418", "BMK4021"} <= {r["text"] for r in reads}  # the drive's first two listed plates
    counts = json.loads(first.stderr.splitlines()[-1])
    assert counts["frames"] == 90 and 0 < counts["not_read_again"] < counts["boxes"]


def test_a_clip_that_is_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    proc = run(str(bad))
    assert proc.returncode == 2 and "cannot open" in proc.stderr and str(bad) in proc.stderr


def test_every_nth_frame_is_a_loop_that_falls_behind() -> None:
    proc = run(str(DRIVE), "--frames", "90", "--every", "3")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stderr.splitlines()[-1])
    assert counts["frames"] == 30  # frames 0, 3, ..., 87 of the 90
    bad = run(str(DRIVE), "--every", "0")
    assert bad.returncode == 2 and "every" in bad.stderr
