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

import argparse
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import serial

from picar.isotime import utc_iso
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


class _ReconnectingSource:
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


class SerialGps(_ReconnectingSource):
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


# -- gpsd ----------------------------------------------------------------------------------------------------


WATCH = b'?WATCH={"enable":true,"json":true}\n'


class GpsdDecoder:
    """gpsd JSON lines to epochs: TPV gives position and mode, SKY gives satellites and HDOP."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._sats: int | None = None
        self._hdop: float | None = None
        self.counters = {"messages": 0, "bad_json": 0, "ignored": 0, "epochs": 0, "fixes": 0}

    def feed_line(self, line: bytes | str) -> Epoch | None:
        """One gpsd report; returns an epoch for a TPV report, None otherwise."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if not text.strip():
            return None
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self.counters["bad_json"] += 1
            log.warning("gpsd: bad JSON (%s): %r", e, text[:80])
            return None
        self.counters["messages"] += 1
        cls = msg.get("class")
        if cls == "SKY":
            self._sky(msg)
            return None
        if cls != "TPV":
            self.counters["ignored"] += 1
            return None
        return self._tpv(msg)

    def _sky(self, msg: dict[str, Any]) -> None:
        if isinstance(msg.get("uSat"), int):
            self._sats = msg["uSat"]
        elif isinstance(msg.get("satellites"), list):
            self._sats = sum(1 for s in msg["satellites"] if isinstance(s, dict) and s.get("used"))
        if _number(msg.get("hdop")):
            self._hdop = float(msg["hdop"])

    def _tpv(self, msg: dict[str, Any]) -> Epoch:
        received = self._monotonic()
        self.counters["epochs"] += 1
        when = None
        if isinstance(msg.get("time"), str):
            try:
                when = datetime.fromisoformat(msg["time"])
            except ValueError:
                log.warning("gpsd: TPV time %r is not ISO 8601", msg["time"])
        mode = msg.get("mode")
        if mode not in (2, 3) or not (_number(msg.get("lat")) and _number(msg.get("lon"))):
            return Epoch(when, None, self._sats, self._hdop, received)
        if when is None or when.tzinfo is None:
            return Epoch(when, None, self._sats, self._hdop, received)
        lat, lon = float(msg["lat"]), float(msg["lon"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            log.warning("gpsd: TPV position %r,%r out of range", lat, lon)
            return Epoch(when, None, self._sats, self._hdop, received)
        alt = next((msg[k] for k in ("altMSL", "alt", "altHAE") if _number(msg.get(k))), None)
        fix = Fix(
            time=when,
            lat=lat,
            lon=lon,
            fix="3d" if mode == 3 else "2d",
            speed_kmh=float(msg["speed"]) * 3.6 if _number(msg.get("speed")) else None,
            heading_deg=float(msg["track"]) if _number(msg.get("track")) else None,
            sats=self._sats,
            hdop=self._hdop,
            alt_m=float(alt) if alt is not None and mode == 3 else None,
            received_monotonic=received,
        )
        self.counters["fixes"] += 1
        return Epoch(when, fix, self._sats, self._hdop, received)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v


def open_gpsd(host: str, port: int) -> socket.socket:
    """Connect to gpsd and ask for JSON reports."""
    sock = socket.create_connection((host, port), timeout=5)
    sock.settimeout(READ_TIMEOUT_S)
    sock.sendall(WATCH)
    return sock


def pump_gpsd(
    sock: socket.socket,
    decoder: GpsdDecoder,
    emit: Callable[[Epoch], None],
    stop: threading.Event,
) -> None:
    """Read gpsd reports until stop; raises OSError when gpsd closes the connection."""
    buf = b""
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            raise DeviceGone("gpsd closed the connection")
        buf += data
        *lines, buf = buf.split(b"\n")
        if len(buf) > 1 << 20:
            raise DeviceGone("gpsd sent over 1 MiB without a line end")
        for line in lines:
            epoch = decoder.feed_line(line)
            if epoch is not None:
                emit(epoch)


class GpsdGps(_ReconnectingSource):
    """Positions from a gpsd daemon over TCP (its JSON protocol)."""

    kind = "gpsd"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2947,
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
        self.host = host
        self.port = port
        self.decoder = GpsdDecoder(monotonic=monotonic)

    def _where(self) -> str:
        return f"gpsd {self.host}:{self.port}"

    def _open(self) -> socket.socket:
        return open_gpsd(self.host, self.port)

    def _pump(self, conn: socket.socket) -> None:
        pump_gpsd(conn, self.decoder, self._epoch, self._stop)

    def _close(self, conn: socket.socket) -> None:
        conn.close()

    def _counters(self) -> dict[str, int]:
        return dict(self.decoder.counters)

    def _progress(self) -> int:
        return self.decoder.counters["messages"] + self.decoder.counters["bad_json"]


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


# -- picar gps ---------------------------------------------------------------------------------------------


def _readable(epoch: Epoch) -> str:
    when = "time unknown" if epoch.time is None else utc_iso(epoch.time)
    sats = "-" if epoch.sats is None else epoch.sats
    tail = f"sats {sats}  hdop {'-' if epoch.hdop is None else epoch.hdop}"
    fix = epoch.fix
    if fix is None:
        return f"{when}  no fix  {tail}"
    speed = "-" if fix.speed_kmh is None else f"{fix.speed_kmh:.1f}"
    heading = "-" if fix.heading_deg is None else f"{fix.heading_deg:.1f}"
    return f"{when}  {fix.lat:.7f},{fix.lon:.7f}  {fix.fix}  {speed} km/h  {heading} deg  {tail}"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def gps_main(argv: list[str]) -> int:
    """`picar gps`: print the receiver's epochs; 0 when the device goes away, 2 if it cannot be opened."""
    ap = argparse.ArgumentParser(prog="picar gps", description="Show what the GPS receiver reports.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--device", help="serial device (or a recorded NMEA file), e.g. /dev/ttyACM0")
    src.add_argument("--gpsd", type=_host_port, metavar="HOST:PORT", help="read from gpsd instead")
    ap.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    ap.add_argument("--json", action="store_true", help="one JSON object per epoch (fix none: null lat/lon)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="picar gps: %(message)s")

    def emit(epoch: Epoch) -> None:
        line = json.dumps(epoch.to_json()) if args.json else _readable(epoch)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    stop = threading.Event()
    try:
        if args.gpsd:
            host, port = args.gpsd
            return _gpsd_main(host, port, emit, stop)
        return _device_main(args.device, args.baud, emit, stop)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # keep interpreter exit quiet
        return 0


def _device_main(device: str, baud: int, emit: Callable[[Epoch], None], stop: threading.Event) -> int:
    asm = NmeaAssembler()
    if os.path.isfile(device):
        with open(device, "rb") as f:
            for line in f:
                for epoch in asm.feed_epochs(line):
                    emit(epoch)
    else:
        try:
            port = open_serial(device, baud)
        except (OSError, ValueError) as e:
            print(f"picar gps: cannot open {device}: {e}", file=sys.stderr)
            return 2
        try:
            pump_serial(port, device, asm, emit, stop)
        except OSError as e:
            print(f"picar gps: {device} went away: {e}", file=sys.stderr)
        finally:
            port.close()
    for epoch in asm.flush():
        emit(epoch)
    _report_counters(asm.counters.as_dict())
    return 0


def _gpsd_main(host: str, port: int, emit: Callable[[Epoch], None], stop: threading.Event) -> int:
    try:
        sock = open_gpsd(host, port)
    except OSError as e:
        print(f"picar gps: cannot connect to gpsd at {host}:{port}: {e}", file=sys.stderr)
        return 2
    decoder = GpsdDecoder()
    try:
        pump_gpsd(sock, decoder, emit, stop)
    except OSError as e:
        print(f"picar gps: gpsd at {host}:{port}: {e}", file=sys.stderr)
    finally:
        sock.close()
    _report_counters(decoder.counters)
    return 0


def _report_counters(counters: dict[str, int]) -> None:
    print("picar gps: " + ", ".join(f"{k} {v}" for k, v in counters.items()), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(gps_main(sys.argv[1:]))
