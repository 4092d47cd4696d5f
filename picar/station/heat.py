"""Kennel heat alarm: a temperature sensor on a serial line, normal/warning/alarm with hysteresis.

Line protocol (docs/station.md): ``T=31.5 ENGINE=ON AC=OFF*32\\r\\n``. ``T`` (degrees C) is required,
``ENGINE`` and ``AC`` (ON/OFF) are optional, ``*HH`` is an optional XOR checksum of the characters
before the ``*`` (as in NMEA). Lines that do not parse are counted and logged with the line itself.

A sensor that says nothing for `silence_s` is a warning in itself: a dead sensor in a hot car must
not look like a cool kennel. On entering the alarm state `alarm_command` is run (no shell, with a
timeout) so that real outputs (horn, windows, fans) can be driven; its exit is logged.

The sensor is read by `picar.sources.serial_lines.SerialLines`, the reader the K9 door input uses too.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from picar.sources.serial_lines import LineError, SerialLines, checked_text

log = logging.getLogger("picar.heat")  # name kept from before the package move: log lines carry it

STATES = ("normal", "warning", "alarm")


@dataclass(frozen=True)
class HeatReading:
    """One sensor line."""

    temp_c: float
    engine: bool | None
    ac: bool | None


def _on_off(key: str, value: str, text: str) -> bool:
    if value not in ("ON", "OFF"):
        raise LineError(f"{key}={value} is not ON or OFF in {text!r}")
    return value == "ON"


def parse_heat_line(raw: bytes) -> HeatReading:
    """Parse ``T=31.5 ENGINE=ON AC=OFF[*HH]``; raise LineError naming the line when it is bad."""
    text = checked_text(raw)
    fields: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise LineError(f"field {part!r} is not KEY=VALUE in {text!r}")
        if key not in ("T", "ENGINE", "AC"):
            raise LineError(f"unknown field {key!r} in {text!r}")
        fields[key] = value.upper()
    if "T" not in fields:
        raise LineError(f"no T= temperature in {text!r}")
    try:
        temp = float(fields["T"])
    except ValueError as exc:
        raise LineError(f"T={fields['T']} is not a number in {text!r}") from exc
    if not -40.0 <= temp <= 125.0:
        raise LineError(f"T={temp} outside the sensor range -40..125 C in {text!r}")
    engine = _on_off("ENGINE", fields["ENGINE"], text) if "ENGINE" in fields else None
    ac = _on_off("AC", fields["AC"], text) if "AC" in fields else None
    return HeatReading(temp, engine, ac)


class HeatMonitor:
    """Kennel temperature watch: reports state changes and drives an alarm output command."""

    def __init__(
        self,
        device: str,
        baud: int,
        warn_c: float,
        alarm_c: float,
        on_state: Callable[[dict[str, Any]], None],
        alarm_command: str | None,
        *,
        hysteresis_c: float = 1.0,
        silence_s: float = 10.0,
        command_timeout_s: float = 15.0,
        on_command: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not warn_c < alarm_c:
            raise ValueError(f"heat warn_c ({warn_c}) must be below alarm_c ({alarm_c})")
        if hysteresis_c < 0:
            raise ValueError(f"heat hysteresis_c must be >= 0, got {hysteresis_c}")
        self.warn_c = warn_c
        self.alarm_c = alarm_c
        self.hysteresis_c = hysteresis_c
        self.silence_s = silence_s
        self._on_state = on_state
        self._argv = shlex.split(alarm_command) if alarm_command else None
        self._command_timeout = command_timeout_s
        self._on_command = on_command
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._state = "normal"
        self._reason = "no reading yet"
        self._last: HeatReading | None = None
        self._last_at: float | None = None
        self._silent = False
        self._silent_s = 0.0
        self._started_at = clock()
        self._since = wall_clock()
        self.lines_ok = 0
        self.lines_bad = 0
        self._reader = SerialLines(device, baud, self.feed, self.check_silence, name="heat")

    def start(self) -> None:
        """Start reading the sensor."""
        self._started_at = self._clock()
        self._reader.start()

    def stop(self) -> None:
        """Stop reading the sensor."""
        self._reader.stop()

    def snapshot(self) -> dict[str, Any]:
        """The current state as the dict `on_state` receives."""
        with self._lock:
            return self._snapshot_locked()

    def feed(self, raw: bytes) -> None:
        """Handle one sensor line (called by the reader thread; callable directly in tests)."""
        try:
            reading = parse_heat_line(raw)
        except LineError as exc:
            self.lines_bad += 1
            log.warning("heat sensor: bad line #%d ignored: %s", self.lines_bad, exc)
            return
        self.lines_ok += 1
        with self._lock:
            self._last = reading
            self._last_at = self._clock()
            state, reason = self._classify(reading)
            self._silent = False
            changed = self._set(state, reason)
        if changed:
            self._report(changed)

    def check_silence(self) -> None:
        """Raise a warning when the sensor has been quiet for longer than `silence_s`."""
        with self._lock:
            heard = self._last_at if self._last_at is not None else self._started_at
            quiet = self._clock() - heard
            if quiet <= self.silence_s or self._state == "alarm":
                return
            self._silent = True
            self._silent_s = quiet
            changed = self._set("warning", f"sensor silent for {quiet:.0f} s")
        if changed:
            self._report(changed)

    def _classify(self, r: HeatReading) -> tuple[str, str]:
        t, h = r.temp_c, self.hysteresis_c
        engine = "" if r.engine is None else (" engine on" if r.engine else " engine OFF")
        if t >= self.alarm_c or (self._state == "alarm" and t > self.alarm_c - h):
            return "alarm", f"{t:.1f} °C (alarm at {self.alarm_c:.1f} °C){engine}"
        held = self._state in ("warning", "alarm") and not self._silent
        if t >= self.warn_c or (held and t > self.warn_c - h):
            return "warning", f"{t:.1f} °C (warning at {self.warn_c:.1f} °C){engine}"
        return "normal", f"{t:.1f} °C{engine}"

    def _set(self, state: str, reason: str) -> dict[str, Any] | None:
        previous = self._state
        self._reason = reason
        if state == previous:
            return None
        self._state = state
        self._since = self._wall()
        snap = self._snapshot_locked()
        snap["previous"] = previous
        return snap

    def _snapshot_locked(self) -> dict[str, Any]:
        r = self._last
        age = None if self._last_at is None else round(self._clock() - self._last_at, 1)
        return {
            "state": self._state,
            "reason": self._reason,
            "temp_c": None if r is None else r.temp_c,
            "engine": None if r is None else r.engine,
            "ac": None if r is None else r.ac,
            "warn_c": self.warn_c,
            "alarm_c": self.alarm_c,
            "since": self._since,
            "reading_age_s": age,
            "lines_bad": self.lines_bad,
            # Seconds without a valid line when that is the reason for the state (the page words it itself).
            "silent_s": round(self._silent_s) if self._silent else None,
        }

    def _report(self, snap: dict[str, Any]) -> None:
        level = logging.WARNING if snap["state"] != "normal" else logging.INFO
        log.log(level, "kennel heat %s -> %s: %s", snap["previous"], snap["state"], snap["reason"])
        try:
            self._on_state(snap)
        except Exception:
            log.exception("heat on_state callback failed")
        if snap["state"] == "alarm" and self._argv:
            threading.Thread(target=self._run_command, args=(snap,), name="heat-alarm-cmd",
                             daemon=True).start()

    def _run_command(self, snap: dict[str, Any]) -> None:
        assert self._argv is not None
        env = dict(os.environ, PICAR_HEAT_STATE=snap["state"], PICAR_HEAT_TEMP_C=str(snap["temp_c"]))
        started = time.monotonic()
        result: dict[str, Any] = {"argv": self._argv, "returncode": None, "error": None}
        try:
            done = subprocess.run(self._argv, env=env, capture_output=True, timeout=self._command_timeout,
                                  check=False)
            result["returncode"] = done.returncode
            tail = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-300:]
            level = logging.INFO if done.returncode == 0 else logging.ERROR
            log.log(level, "heat alarm command %s exited %d %s", self._argv, done.returncode, tail)
        except subprocess.TimeoutExpired:
            result["error"] = f"timed out after {self._command_timeout} s"
            log.error("heat alarm command %s timed out after %.0f s", self._argv, self._command_timeout)
        except OSError as exc:
            result["error"] = str(exc)
            log.error("heat alarm command %s could not run: %s", self._argv, exc)
        result["duration_s"] = round(time.monotonic() - started, 3)
        if self._on_command is not None:
            self._on_command(result)
