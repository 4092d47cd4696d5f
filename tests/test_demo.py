"""`picar demo --fast` (what ./scripts/demo runs after set-up): the whole system, HQ's database included."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_shows_the_hits_and_what_hqs_database_stored(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "picar.cli", "demo", "--fast", "--workdir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=360, cwd=ROOT)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    stored = re.search(r"HQ stored (\d+) read\(s\) and (\d+) hit\(s\) with (\d+) evidence image", out)
    reached = re.search(r"(\d+) read\(s\) and (\d+) hit\(s\) reached HQ", out)
    assert stored and reached, out
    assert int(stored[2]) == int(reached[2]) >= 4 and int(stored[3]) == 2 * int(stored[2])  # crop and frame each
    assert "MISSING" not in out
    assert (tmp_path / "run" / "hq.toml").is_file()  # --workdir keeps HQ's config too
    # A Moldovan patrol car: its page in Romanian (the demo's own config, checked as the daemon checks it).
    from picar.config import load_config

    assert load_config(tmp_path / "run" / "picar.toml").ui.language == "ro"
