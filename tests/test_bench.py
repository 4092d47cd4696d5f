"""`picar bench` runs the car's own pipeline and sink on a clip and delivers to the broker it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hw_sim.sim import expected_hits
from tests.broker import Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PICAR_BENCH_BROKER"}
    return subprocess.run([sys.executable, "-m", "picar.cli", "bench", *args], capture_output=True, text=True,
                          timeout=280, env=env)


def test_bench_on_the_demo_drive_delivers_every_hit_to_the_broker(tmp_path: Path) -> None:
    # The one open broker in the tests: `picar bench --broker` targets a developer's throwaway plain
    # `mosquitto -p 18830` (no users), and its own latency subscriber connects with no identity either.
    with Mosquitto(tmp_path, open_access=True) as broker:
        proc = bench("--broker", f"{broker.host}:{broker.port}", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["frames"] > 300 and result["dropped"] == 0 and result["broken"] == 0
    assert set(result["stages"]) >= {"decode", "preprocess", "detect", "ocr", "track_match", "publish"}
    assert result["hits"] >= len(expected_hits()) and result["hit_mode"] == "watchlist"
    assert result["hits_delivered"] == result["hits"], result  # every hit reached HQ through the outbox
    assert result["hit_latency_ms"]["n"] == result["hits"] and result["hit_latency_ms"]["p50"] > 0
    # the demo's plates stay in view for many frames after their read is out: those boxes are not read again
    assert 0 < result["boxes_not_read_again"] < result["boxes"], result


def test_bench_without_a_broker_has_no_latency_and_a_bad_address_is_refused() -> None:
    bad = bench("--broker", "nowhere")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr
    proc = bench("--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["hits"] >= len(expected_hits()) and result["hits_delivered"] == 0
