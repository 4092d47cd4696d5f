"""Kennel heat alarm: line protocol, states with hysteresis, silence, and the alarm command, on a real pty."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hw_sim.heat_sensor import HeatSensorSim, heat_line, parse_ramp
from picar.sources.serial_lines import LineError, with_checksum
from picar.station.heat import HeatMonitor, parse_heat_line
from tests.waiting import wait_until


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class States:
    """Collects on_state calls; wait() blocks until one with the given state arrives."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, snap: dict[str, Any]) -> None:
        with self._cond:
            self.seen.append(snap)
            self._cond.notify_all()

    def wait(self, state: str, timeout: float = 5.0) -> dict[str, Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(s["state"] == state for s in self.seen), timeout)
        assert ok, f"no {state!r} state within {timeout} s; saw {[s['state'] for s in self.seen]}"
        return next(s for s in self.seen if s["state"] == state)

    def names(self) -> list[str]:
        return [s["state"] for s in self.seen]


def test_parse_lines() -> None:
    r = parse_heat_line(with_checksum("T=31.5 ENGINE=ON AC=OFF").encode())
    assert (r.temp_c, r.engine, r.ac) == (31.5, True, False)
    assert parse_heat_line(b"T=-3.0").engine is None
    assert parse_heat_line(heat_line(40.04, False, None).strip()).temp_c == 40.0
    for bad, words in [
        (b"T=31.5 ENGINE=ON*00", "checksum 00 does not match"),
        (b"T=hot", "T=HOT is not a number"),
        (b"ENGINE=ON", "no T= temperature"),
        (b"T=31 FAN=ON", "unknown field 'FAN'"),
        (b"T=31 ENGINE=MAYBE", "ENGINE=MAYBE is not ON or OFF"),
        (b"T=300", "outside the sensor range"),
        (b"T=31 \xff", "not ASCII"),
    ]:
        with pytest.raises(LineError, match=words):
            parse_heat_line(bad)


def test_parse_ramp() -> None:
    assert parse_ramp("0.5/s") == 0.5 and parse_ramp("3/min") == 0.05 and parse_ramp("2") == 2.0


def monitor(states: States, clock: Clock, command: str | None = None, **kw: Any) -> HeatMonitor:
    return HeatMonitor("/dev/null", 9600, 30.0, 35.0, states, command, hysteresis_c=1.0,
                       silence_s=10.0, clock=clock, **kw)


def test_states_with_hysteresis() -> None:
    states, clock = States(), Clock()
    m = monitor(states, clock)
    for t in (25.0, 29.9, 30.0, 34.9, 35.0, 34.5, 34.0, 33.9, 29.5, 29.0, 28.9):
        m.feed(f"T={t} ENGINE=OFF".encode())
    temps = [s["temp_c"] for s in states.seen]
    assert states.names() == ["warning", "alarm", "warning", "normal"]
    assert temps == [30.0, 35.0, 34.0, 29.0]  # leaving a state needs 1 C below its threshold
    assert "engine OFF" in states.seen[1]["reason"]
    m.feed(b"T=banana")
    assert m.lines_bad == 1 and m.snapshot()["state"] == "normal"


def test_silence_is_a_warning_and_recovers() -> None:
    states, clock = States(), Clock()
    m = monitor(states, clock)
    m.feed(b"T=22.0")
    clock.t += 9.0
    m.check_silence()
    assert states.seen == []
    clock.t += 2.0
    m.check_silence()
    assert states.names() == ["warning"] and "sensor silent for 11 s" in states.seen[0]["reason"]
    m.feed(b"T=22.5")  # talking again, and cool: normal at once (no hysteresis on silence)
    assert states.names() == ["warning", "normal"]


def test_alarm_command_timeout_and_missing_program_are_reported(tmp_path: Path) -> None:
    results: list[dict[str, Any]] = []
    done = threading.Event()

    def on_command(r: dict[str, Any]) -> None:
        results.append(r)
        done.set()

    m = monitor(States(), Clock(), f"{sys.executable} -c 'import time; time.sleep(30)'",
                command_timeout_s=0.3, on_command=on_command)
    m.feed(b"T=40")
    assert done.wait(30)
    assert results[0]["error"] == "timed out after 0.3 s" and results[0]["returncode"] is None
    done.clear()
    m2 = monitor(States(), Clock(), str(tmp_path / "no-such-horn"), on_command=on_command)
    m2.feed(b"T=40")
    assert done.wait(30)
    assert "No such file" in results[1]["error"]


def test_simulated_sensor_crossing_the_threshold_fires_the_alarm(tmp_path: Path) -> None:
    """The CLI simulator ramps on a pty; the monitor reads it with pyserial and runs the command."""
    fired = tmp_path / "horn-fired"
    script = tmp_path / "horn.sh"
    script.write_text('#!/bin/sh\necho "$PICAR_HEAT_STATE $PICAR_HEAT_TEMP_C" > "$1"\n')
    script.chmod(0o755)
    sim = subprocess.Popen(
        [sys.executable, "-m", "hw_sim.heat_sensor", "--start", "25", "--ramp", "40/s", "--interval", "0.05",
         "--engine", "off", "--bad-every", "4"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    states = States()
    command_done = threading.Event()
    commands: list[dict[str, Any]] = []
    m: HeatMonitor | None = None
    try:
        assert sim.stdout is not None
        first = sim.stdout.readline().split()
        assert first[0] == "PTY", first
        m = HeatMonitor(first[1], 9600, warn_c=30.0, alarm_c=35.0, on_state=states,
                        alarm_command=f"{script} {fired}",
                        on_command=lambda r: (commands.append(r), command_done.set()))
        m.start()
        alarm = states.wait("alarm", timeout=30)
        assert command_done.wait(30)
    finally:
        if m is not None:
            m.stop()
        sim.terminate()
        sim.wait(5)
    assert alarm["temp_c"] >= 35.0 and alarm["engine"] is False
    assert commands[0]["returncode"] == 0
    state, temp = fired.read_text().split()
    assert state == "alarm" and float(temp) >= 35.0
    assert m.lines_bad >= 1  # the simulator's garbage lines were counted, not fatal


def test_silent_sensor_on_a_pty_warns() -> None:
    sensor_clock = Clock()  # the simulated sensor talks until the test moves its clock past silent_after_s
    sim = HeatSensorSim(start_c=22.0, interval_s=0.05, silent_after_s=1.0, clock=sensor_clock)
    states = States()
    m = HeatMonitor(sim.start(), 9600, 30.0, 35.0, states, None, silence_s=0.5)
    m.start()
    try:
        assert wait_until(lambda: m.lines_ok > 0, 30), "the monitor never heard the sensor"
        sensor_clock.t += 10.0
        warning = states.wait("warning", timeout=30)
    finally:
        m.stop()
        sim.stop()
    assert warning["reason"].startswith("sensor silent") and warning["temp_c"] == 22.0


def test_protocol_examples_in_the_docs_parse() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "station.md").read_text()
    assert parse_heat_line(b"T=31.5 ENGINE=ON AC=OFF*32").temp_c == 31.5
    for line in ("T=31.5 ENGINE=ON AC=OFF*32", "DOOR OPEN*22", "DOOR CLOSED*24"):
        assert f"\n{line}\n" in doc
    from picar.sources.serial_lines import checked_text

    assert checked_text(b"DOOR OPEN*22") == "DOOR OPEN" and checked_text(b"DOOR CLOSED*24") == "DOOR CLOSED"
