"""GPS input: a serial NMEA receiver (pyserial), gpsd, or none, behind one `GpsSource` interface.

Every source keeps a short history of epochs so the pipeline can ask where the car was when a
frame was captured (`fix_at`), not where it is now. Times are matched on the monotonic clock at
which the sentences arrived, so a Pi whose wall clock is wrong (no RTC, no network) still gets
the right position; the fix itself carries the receiver's UTC time.

No fix is `None`, never 0,0. A device that vanishes is reopened with exponential back-off.

`picar gps --device DEV --json` prints one JSON object per receiver epoch. Epochs without a fix are
printed too, with "fix": "none" and null lat/lon/speed/heading, so a tool sees the receiver is
alive but blind; "time" is null when the receiver does not know the time yet.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

import serial

from picar.sources.nmea import Epoch, NmeaAssembler
from picar.types import Fix

log = logging.getLogger("picar.gps")  # name kept from before the package move: log lines carry it

HISTORY = 64  # epochs kept for fix_at: about a minute at 1 Hz
READ_TIMEOUT_S = 0.2  # how often a reader thread looks at its stop flag
VANISH_CHECK_S = 0.5  # how often a reader looks whether its device node still exists


class GpsSource(Protocol):
    """What the pipeline needs from a GPS."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def latest(self) -> Fix | None: ...
    def fix_at(self, t_wall: float) -> Fix | None: ...
    def status(self) -> dict[str, object]: ...


class DeviceGone(OSError):
    """The device node disappeared or the stream ended."""


# -- history and interpolation ------------------------------------------------------------------------


class FixHistory:
    """The last epochs (fix or no fix) on the monotonic clock; answers 'where were we at t?'."""

    def __init__(
        self,
        max_fix_age_s: float,
        *,
        size: int = HISTORY,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_fix_age_s = max_fix_age_s
        self._epochs: deque[Epoch] = deque(maxlen=size)
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()

    def add(self, epoch: Epoch) -> None:
        with self._lock:
            self._epochs.append(epoch)

    def last_epoch(self) -> Epoch | None:
        with self._lock:
            return self._epochs[-1] if self._epochs else None

    def latest(self) -> Fix | None:
        """The newest fix, unless the receiver has since reported no fix or it is older than allowed."""
        epoch = self.last_epoch()
        if epoch is None or epoch.fix is None:
            return None
        if self._monotonic() - epoch.received_monotonic > self.max_fix_age_s:
            return None
        return epoch.fix

    def fix_at(self, t_wall: float) -> Fix | None:
        """Position at wall-clock time t_wall: interpolated between the two epochs around it when
        both are fixes less than max_fix_age_s apart, else the nearer fix within max_fix_age_s."""
        t = t_wall - (self._wall() - self._monotonic())
        with self._lock:
            epochs = list(self._epochs)
        before = next((e for e in reversed(epochs) if e.received_monotonic <= t), None)
        after = next((e for e in epochs if e.received_monotonic > t), None)
        usable = [
            e
            for e in (before, after)
            if e is not None and e.fix is not None and abs(e.received_monotonic - t) <= self.max_fix_age_s
        ]
        if len(usable) == 2:
            a, b = usable[0].fix, usable[1].fix
            assert a is not None and b is not None
            if b.received_monotonic - a.received_monotonic <= self.max_fix_age_s:
                return interpolate(a, b, t)
        if not usable:
            return None
        nearest = min(usable, key=lambda e: abs(e.received_monotonic - t))
        return nearest.fix


def interpolate(a: Fix, b: Fix, t_monotonic: float) -> Fix:
    """The straight-line position between fixes a and b at t (on their received_monotonic clock)."""
    span = b.received_monotonic - a.received_monotonic
    f = 0.0 if span <= 0 else min(1.0, max(0.0, (t_monotonic - a.received_monotonic) / span))
    near = a if f < 0.5 else b
    dlon = (b.lon - a.lon + 180) % 360 - 180
    heading = None
    if a.heading_deg is not None and b.heading_deg is not None:
        heading = (a.heading_deg + f * ((b.heading_deg - a.heading_deg + 180) % 360 - 180)) % 360
    speed = None
    if a.speed_kmh is not None and b.speed_kmh is not None:
        speed = a.speed_kmh + f * (b.speed_kmh - a.speed_kmh)
    return replace(
        near,
        time=a.time + timedelta(seconds=f * (b.time - a.time).total_seconds()),
        lat=a.lat + f * (b.lat - a.lat),
        lon=(a.lon + f * dlon + 180) % 360 - 180,
        speed_kmh=speed,
        heading_deg=heading,
        received_monotonic=t_monotonic,
    )


# -- reconnecting sources ---------------------------------------------------------------------------------


class ReconnectingSource:
    """A reader thread that opens a connection, pumps it into epochs, and reopens with back-off."""

    kind = "?"

    def __init__(
        self,
        *,
        max_fix_age_s: float,
        reopen_initial_s: float,
        reopen_max_s: float,
        on_fix: Callable[[Fix], None] | None,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.history = FixHistory(max_fix_age_s, monotonic=monotonic, wall=wall)
        self._reopen_initial_s = reopen_initial_s
        self._reopen_max_s = reopen_max_s
        self._on_fix = on_fix
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.opens = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start the reader thread; it keeps trying to open the device until stop()."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"gps-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the reader thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait_connected(self, timeout: float) -> bool:
        """True once the device is open (for start-up ordering and tests)."""
        return self._connected.wait(timeout)

    def latest(self) -> Fix | None:
        return self.history.latest()

    def fix_at(self, t_wall: float) -> Fix | None:
        return self.history.fix_at(t_wall)

    def status(self) -> dict[str, object]:
        """Connected, fix quality, age of the last epoch, counters: for health checks and the UI."""
        epoch = self.history.last_epoch()
        age = None if epoch is None else round(self._monotonic() - epoch.received_monotonic, 3)
        fix = self.history.latest()
        return {
            "source": self.kind,
            "connected": self._connected.is_set(),
            "fix": "none" if fix is None else fix.fix,
            "age_s": age,
            "sats": None if epoch is None else epoch.sats,
            "hdop": None if epoch is None else epoch.hdop,
            "opens": self.opens,
            "last_error": self.last_error,
            "counters": self._counters(),
        }

    def _epoch(self, epoch: Epoch) -> None:
        self.history.add(epoch)
        if epoch.fix is not None and self._on_fix is not None:
            try:
                self._on_fix(epoch.fix)
            except Exception:
                log.exception("GPS on_fix callback failed")

    def _run(self) -> None:
        delay = self._reopen_initial_s
        while not self._stop.is_set():
            try:
                conn = self._open()
            except (OSError, ValueError) as e:
                self._note_error(f"cannot open {self._where()}: {e}; retry in {delay:g} s")
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self._reopen_max_s)
                continue
            self.opens += 1
            self._connected.set()
            log.info("GPS %s open", self._where())
            before = self._progress()
            try:
                self._pump(conn)
            except OSError as e:
                self._note_error(f"{self._where()} lost: {e}")
            except Exception as e:  # a bug must not end GPS input for the rest of the shift
                log.exception("GPS %s reader failed", self._where())
                self.last_error = f"{self._where()} reader failed: {e!r}"
            finally:
                self._connected.clear()
                self._close(conn)
            # A device that opens but fails at once must not be reopened in a tight loop:
            # the back-off only starts over once data came through.
            delay = self._reopen_initial_s if self._progress() != before else min(delay * 2, self._reopen_max_s)
            if self._stop.wait(delay):
                return

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("GPS %s", message)
        self.last_error = message

    def _where(self) -> str:
        raise NotImplementedError

    def _open(self) -> Any:
        raise NotImplementedError

    def _pump(self, conn: Any) -> None:
        raise NotImplementedError

    def _close(self, conn: Any) -> None:
        raise NotImplementedError

    def _counters(self) -> dict[str, int]:
        raise NotImplementedError

    def _progress(self) -> int:
        raise NotImplementedError


def open_serial(device: str, baud: int) -> serial.Serial:
    """Open a serial port for reading NMEA; raises SerialException (an OSError) when it cannot."""
    return serial.Serial(device, baud, timeout=READ_TIMEOUT_S)


def pump_serial(
    port: serial.Serial, device: str, asm: NmeaAssembler, emit: Callable[[Epoch], None], stop: threading.Event
) -> None:
    """Read a serial port into epochs until stop; raises OSError when the device goes away."""
    checked = time.monotonic()
    while not stop.is_set():
        data = port.read(max(1, port.in_waiting))
        # A removed device node does not always make reads fail, so look at the path itself too.
        if not data or time.monotonic() - checked >= VANISH_CHECK_S:
            checked = time.monotonic()
            if not os.path.exists(device):
                raise DeviceGone(f"{device} disappeared")
        for epoch in asm.feed_bytes(data):
            emit(epoch)


class SerialGps(ReconnectingSource):
    """An NMEA receiver on a serial port (USB or UART)."""

    kind = "serial"

    def __init__(
        self,
        device: str,
        baud: int = 9600,
        *,
        max_fix_age_s: float = 3.0,
        reopen_initial_s: float = 1.0,
        reopen_max_s: float = 30.0,
        on_fix: Callable[[Fix], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            max_fix_age_s=max_fix_age_s,
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
            on_fix=on_fix,
            monotonic=monotonic,
            wall=wall,
        )
        self.device = device
        self.baud = baud
        self.assembler = NmeaAssembler(monotonic=monotonic, wall=wall)

    def _where(self) -> str:
        return self.device

    def _open(self) -> serial.Serial:
        return open_serial(self.device, self.baud)

    def _pump(self, conn: serial.Serial) -> None:
        self.assembler.reset_stream()
        pump_serial(conn, self.device, self.assembler, self._epoch, self._stop)

    def _close(self, conn: serial.Serial) -> None:
        try:
            conn.close()
        except OSError:
            pass

    def _counters(self) -> dict[str, int]:
        return self.assembler.counters.as_dict()

    def _progress(self) -> int:
        return self.assembler.counters.lines


class NoGps:
    """source = none: reads carry no position."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def latest(self) -> Fix | None:
        return None

    def fix_at(self, t_wall: float) -> Fix | None:
        return None

    def status(self) -> dict[str, object]:
        return {"source": "none", "connected": False, "fix": "none", "age_s": None}


def open_gps(
    source: str,
    device: str,
    baud: int,
    gpsd_host: str,
    gpsd_port: int,
    max_fix_age_s: float,
    reopen_initial_s: float,
    reopen_max_s: float,
) -> GpsSource:
    """The GPS source the config asks for (not started yet)."""
    if source == "serial":
        return SerialGps(
            device,
            baud,
            max_fix_age_s=max_fix_age_s,
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
        )
    if source == "gpsd":
        from picar.sources.gpsd import GpsdGps  # gpsd.py builds on this module's reconnecting reader

        return GpsdGps(
            gpsd_host,
            gpsd_port,
            max_fix_age_s=max_fix_age_s,
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
        )
    if source == "none":
        return NoGps()
    raise ValueError(f"gps.source = {source!r}: allowed: 'serial', 'gpsd', 'none'")


