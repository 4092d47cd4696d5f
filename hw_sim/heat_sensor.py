"""Simulated kennel temperature sensor on a pseudo-terminal.

    python -m hw_sim.heat_sensor --start 25 --ramp 0.5/s --engine off

prints ``PTY /dev/pts/N`` on its first line; point the heat monitor (`picar.station.heat.HeatMonitor`)
at that device. Lines follow the protocol in docs/station.md, e.g. ``T=31.5 ENGINE=OFF AC=OFF*7C``.
The temperature starts at --start and changes by --ramp (per second or per minute) up to --max.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import tty
from collections.abc import Callable

from picar.sources.serial_lines import with_checksum


def parse_ramp(text: str) -> float:
    """'0.5/s', '3/min' or '0.5' (per second) as degrees C per second."""
    value, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0}.get(unit.strip().lower())
    if per is None:
        raise argparse.ArgumentTypeError(f"ramp unit {unit!r} must be /s or /min")
    try:
        return float(value) / per
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"ramp {text!r} is not a number per /s or /min") from exc


def heat_line(temp_c: float, engine: bool | None, ac: bool | None, checksum: bool = True) -> bytes:
    """One protocol line, CR LF terminated."""
    parts = [f"T={temp_c:.1f}"]
    if engine is not None:
        parts.append("ENGINE=" + ("ON" if engine else "OFF"))
    if ac is not None:
        parts.append("AC=" + ("ON" if ac else "OFF"))
    text = " ".join(parts)
    return ((with_checksum(text) if checksum else text) + "\r\n").encode("ascii")


class PtyLine:
    """The device end of a simulated serial line: a pty whose slave path readers open with pyserial."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.dropped = 0

    def write(self, data: bytes) -> None:
        """Write without blocking; a full buffer (nobody reading) drops the line and counts it."""
        try:
            os.write(self.master, data)
        except BlockingIOError:
            self.dropped += 1

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class HeatSensorSim:
    """A sensor that reports a ramping temperature every `interval_s` on a pty."""

    def __init__(
        self,
        start_c: float = 25.0,
        ramp_c_per_s: float = 0.0,
        max_c: float = 70.0,
        engine: bool | None = True,
        ac: bool | None = None,
        interval_s: float = 1.0,
        checksum: bool = True,
        bad_every: int = 0,
        silent_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start_c, self.ramp, self.max_c = start_c, ramp_c_per_s, max_c
        self.engine, self.ac = engine, ac
        self.interval, self.checksum, self.bad_every = interval_s, checksum, bad_every
        self.silent_after = silent_after_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.line = PtyLine()
        self.lines_written = 0

    @property
    def path(self) -> str:
        return self.line.path

    def temperature(self, elapsed_s: float) -> float:
        """The simulated temperature after `elapsed_s` seconds."""
        return max(-40.0, min(self.max_c, self.start_c + self.ramp * elapsed_s))

    def start(self) -> str:
        """Start writing; returns the pty path."""
        self._thread = threading.Thread(target=self.run, name="heat-sensor-sim", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.line.close()

    def run(self) -> None:
        """Write lines until stopped (pacing with the stop event's timeout)."""
        t0 = self._clock()
        while not self._stop.is_set():
            elapsed = self._clock() - t0
            if self.silent_after is None or elapsed < self.silent_after:
                self.lines_written += 1
                if self.bad_every and self.lines_written % self.bad_every == 0:
                    self.line.write(b"T=hot ENGINE=MAYBE\r\n")
                else:
                    self.line.write(heat_line(self.temperature(elapsed), self.engine, self.ac, self.checksum))
            self._stop.wait(self.interval)


def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r} must be on or off")
    return text.lower() == "on"


def main(argv: list[str] | None = None) -> int:
    """Run the simulated sensor until interrupted (or --duration)."""
    ap = argparse.ArgumentParser(prog="python -m hw_sim.heat_sensor", description=__doc__.splitlines()[0])
    ap.add_argument("--start", type=float, default=25.0, help="starting temperature, C")
    ap.add_argument("--ramp", type=parse_ramp, default=0.0, help="change per time, e.g. 0.5/s or 3/min")
    ap.add_argument("--max", type=float, default=70.0, help="the ramp stops here, C")
    ap.add_argument("--engine", type=_on_off, default=True, help="on or off")
    ap.add_argument("--ac", type=_on_off, default=None, help="on or off (omitted from lines when not given)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    ap.add_argument("--no-checksum", action="store_true", help="send lines without *HH")
    ap.add_argument("--bad-every", type=int, default=0, help="every Nth line is garbage")
    ap.add_argument("--silent-after", type=float, default=None, help="stop talking after this many s")
    ap.add_argument("--duration", type=float, default=None, help="exit after this many s")
    args = ap.parse_args(argv)
    sim = HeatSensorSim(args.start, args.ramp, args.max, args.engine, args.ac, args.interval,
                        not args.no_checksum, args.bad_every, args.silent_after)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"PTY {sim.path}", flush=True)
    sim.start()
    done.wait(args.duration)
    sim.stop()
    print(f"wrote {sim.lines_written} lines, {sim.line.dropped} dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
