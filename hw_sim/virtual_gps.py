"""A virtual GPS receiver on a pseudo-terminal, so PiCAR reads it exactly like a USB receiver.

It replays a recorded NMEA log or drives a track CSV (hw_sim.track), writing RMC+VTG+GGA+GSA per
epoch, and can inject the faults a real serial line has: bad checksums, binary junk, partial lines,
a no-fix period, and an unplug (the pty goes away). With a stable --link path, `replug()` makes a
new pty and re-points the link, the way udev re-creates /dev/gps0 after a USB reconnect.

    python -m hw_sim.virtual_gps --track drive.csv --link /tmp/gps0
    python -m hw_sim.virtual_gps --nmea drive.nmea --fast --loop
"""

from __future__ import annotations

import argparse
import array
import fcntl
import os
import re
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hw_sim.track import TrackError, TrackPoint, load_track, track_at

KNOTS_PER_KMH = 1 / 1.852
# A u-blox UBX header and payload with a NUL, a '$' and a line end inside: the worst case for a parser.
GARBAGE = b"\xb5\x62\x01\x07\x00\x5c\x00\xff\x24\x00\x0d\x0a\x8e\x10"
_READER_SETTLE_S = 0.1  # pyserial flushes the input queue just after open(); let it do so first
_TIME_FIELD = re.compile(rb"\$..(RMC|GGA),(\d{6}(?:\.\d+)?),|\$..GLL,[^,]*,[^,]*,[^,]*,[^,]*,(\d{6}(?:\.\d+)?),")


@dataclass(frozen=True)
class Faults:
    """Faults to inject; a count of 0 or None disables one. Counts are 1-based every-Nth."""

    bad_checksum_every: int = 0  # every Nth sentence carries a wrong checksum
    partial_every: int = 0  # every Nth sentence is cut in half with no line end
    garbage_every: int = 0  # every Nth epoch is preceded by binary junk
    no_fix: tuple[float, float] | None = None  # track seconds [start, end) with no fix
    unplug_after: int | None = None  # close the pty after this many epochs


def nmea_sentence(body: str) -> str:
    """'$' + body + '*' + checksum, the checksum being the XOR of the body's characters."""
    cs = 0
    for ch in body:
        cs ^= ord(ch)
    return f"${body}*{cs:02X}"


def _dm(value: float, deg_digits: int) -> str:
    minutes = round(abs(value) * 60, 5)
    degrees = int(minutes // 60)
    return f"{degrees:0{deg_digits}d}{minutes - degrees * 60:08.5f}"


def nmea_for_point(
    point: TrackPoint,
    when: datetime,
    *,
    talker: str = "GP",
    sats: int = 9,
    hdop: float = 0.9,
    alt_m: float = 35.0,
) -> list[str]:
    """RMC, VTG, GGA, GSA sentences (no line ends) for one epoch; a point without fix gives no-fix ones."""
    when = when.astimezone(UTC)
    hms = when.strftime("%H%M%S") + f".{when.microsecond // 10000:02d}"
    dmy = when.strftime("%d%m%y")
    if point.lat is None or point.lon is None:
        return [
            nmea_sentence(f"{talker}RMC,{hms},V,,,,,,,{dmy},,,N"),
            nmea_sentence(f"{talker}VTG,,T,,M,,N,,K,N"),
            nmea_sentence(f"{talker}GGA,{hms},,,,,0,00,99.99,,,,,,"),
            nmea_sentence(f"{talker}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
        ]
    lat = f"{_dm(point.lat, 2)},{'N' if point.lat >= 0 else 'S'}"
    lon = f"{_dm(point.lon, 3)},{'E' if point.lon >= 0 else 'W'}"
    knots = point.speed_kmh * KNOTS_PER_KMH
    course = f"{point.heading_deg:.2f}"
    prns = ",".join(f"{n:02d}" for n in range(1, min(sats, 12) + 1)) + "," * (12 - min(sats, 12))
    return [
        nmea_sentence(f"{talker}RMC,{hms},A,{lat},{lon},{knots:.3f},{course},{dmy},,,A"),
        nmea_sentence(f"{talker}VTG,{course},T,,M,{knots:.3f},N,{point.speed_kmh:.3f},K,A"),
        nmea_sentence(f"{talker}GGA,{hms},{lat},{lon},1,{sats:02d},{hdop:.2f},{alt_m:.1f},M,47.0,M,,"),
        nmea_sentence(f"{talker}GSA,A,3,{prns}{hdop * 1.6:.2f},{hdop:.2f},{hdop * 1.3:.2f}"),
    ]


def _line_seconds(line: bytes) -> float | None:
    m = _TIME_FIELD.match(line)
    if m is None:
        return None
    raw = m.group(2) or m.group(3)
    return int(raw[0:2]) * 3600 + int(raw[2:4]) * 60 + float(raw[4:])


def nmea_log_epochs(lines: list[bytes]) -> list[tuple[float, list[bytes]]]:
    """Group a recorded log into (seconds since first epoch, lines) by the sentences' UTC time."""
    epochs: list[tuple[float, list[bytes]]] = []
    at = 0.0
    current: float | None = None
    for line in lines:
        t = _line_seconds(line)
        if t is not None and t != current:
            if current is not None:
                gap = (t - current) % 86400  # across midnight
                at += min(gap, 60.0)  # a long gap in the recording is not worth waiting for
            current = t
            epochs.append((at, []))
        if not epochs:
            epochs.append((at, []))
        epochs[-1][1].append(line if line.endswith(b"\n") else line + b"\r\n")
    return epochs


class VirtualGps:
    """A GPS receiver on a pty: `start()` returns the device path a reader opens with pyserial."""

    def __init__(
        self,
        source: Path | list[TrackPoint],
        *,
        realtime: bool = True,
        start_time: datetime | None = None,
        loop: bool = False,
        speed: float = 1.0,
        rate_hz: float = 1.0,
        link: Path | None = None,
        faults: Faults | None = None,
        wait_for_reader: bool = True,
    ) -> None:
        if speed <= 0 or rate_hz <= 0:
            raise ValueError(f"speed ({speed}) and rate_hz ({rate_hz}) must be > 0")
        self._source = source
        self._realtime = realtime
        now = datetime.now(UTC).replace(microsecond=0)
        self._start_time = (start_time or now).astimezone(UTC)
        self._loop = loop
        self._speed = speed
        self._rate_hz = rate_hz
        self._link = link
        self._faults = faults or Faults()
        self._wait_for_reader = wait_for_reader
        self._lock = threading.Lock()
        self._master: int | None = None
        self._path = ""
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._sentences = 0
        self.epochs_written = 0

    @property
    def path(self) -> str:
        """The current slave device path (changes on replug)."""
        return self._path

    def start(self) -> str:
        """Create the pty and start writing; returns the slave path (or the link, when given)."""
        path = self._open_pty()
        self._thread = threading.Thread(target=self._run, name="virtual-gps", daemon=True)
        self._thread.start()
        return str(self._link) if self._link is not None else path

    def stop(self) -> None:
        """Stop writing and close the pty (readers see the device go away)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.unplug()
        if self._link is not None and os.path.islink(self._link):
            os.unlink(self._link)

    def wait_done(self, timeout: float | None = None) -> bool:
        """Wait until the source is written out and read by the reader (or unplugged)."""
        return self._done.wait(timeout)

    def unplug(self) -> None:
        """Close the pty, as if the USB receiver were pulled out."""
        with self._lock:
            master, self._master = self._master, None
        if master is not None:
            os.close(master)

    def replug(self) -> str:
        """A new pty (a new path), with the link re-pointed to it; returns the new slave path."""
        self.unplug()
        return self._open_pty()

    # -- internals ---------------------------------------------------------------------------------

    def _open_pty(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass through unchanged
        path = os.ttyname(slave)
        os.close(slave)  # a reader opening the slave is then visible as POLLHUP clearing
        os.set_blocking(master, False)
        with self._lock:
            self._master, self._path = master, path
        if self._link is not None:
            tmp = self._link.with_name(f".{self._link.name}.{os.getpid()}")
            os.symlink(path, tmp)
            os.replace(tmp, self._link)
        return path

    def _bursts(self) -> Iterator[tuple[float, list[bytes]]]:
        if isinstance(self._source, Path):
            epochs = nmea_log_epochs(self._source.read_bytes().splitlines(keepends=True))
            if not epochs:
                return
            span = epochs[-1][0] + 1.0
            offset = 0.0
            while True:
                for at, lines in epochs:
                    yield offset + at, lines
                if not self._loop:
                    return
                offset += span
        else:
            yield from self._track_bursts(self._source)

    def _track_bursts(self, points: list[TrackPoint]) -> Iterator[tuple[float, list[bytes]]]:
        if not points:
            return
        t0, span = points[0].t_s, points[-1].t_s - points[0].t_s
        k = 0
        offset = 0.0
        while True:
            t_s = t0 + k / self._rate_hz
            if t_s > t0 + span + 1e-9:
                if not self._loop:
                    return
                offset += k / self._rate_hz
                k = 0
                continue
            point = track_at(points, t_s)
            assert point is not None
            nf = self._faults.no_fix
            if nf is not None and nf[0] <= t_s < nf[1]:
                point = TrackPoint(t_s, None, None)
            at = offset + k / self._rate_hz
            when = self._start_time + timedelta(seconds=at)
            yield at, [(s + "\r\n").encode("ascii") for s in nmea_for_point(point, when)]
            k += 1

    def _run(self) -> None:
        try:
            if not self._await_reader():
                return
            t0 = time.monotonic()
            for at, lines in self._bursts():
                if self._realtime and self._stop.wait(max(0.0, t0 + at / self._speed - time.monotonic())):
                    return
                if self._stop.is_set() or not self._write(self._faulty(lines)):
                    return
                self.epochs_written += 1
                if self._faults.unplug_after is not None and self.epochs_written >= self._faults.unplug_after:
                    self._drain()
                    self.unplug()
                    return
            self._drain()
        finally:
            self._done.set()

    def _faulty(self, lines: list[bytes]) -> bytes:
        f = self._faults
        out = bytearray()
        if f.garbage_every and (self.epochs_written + 1) % f.garbage_every == 0:
            out += GARBAGE
        for line in lines:
            self._sentences += 1
            n = self._sentences
            if f.bad_checksum_every and n % f.bad_checksum_every == 0 and b"*" in line:
                star = line.rindex(b"*")
                wrong = int(line[star + 1 : star + 3], 16) ^ 0x5A
                line = line[: star + 1] + f"{wrong:02X}".encode() + line[star + 3 :]
            if f.partial_every and n % f.partial_every == 0:
                line = line[: len(line) // 2]
            out += line
        return bytes(out)

    def _await_reader(self) -> bool:
        """Block until a pty exists and (if asked) a reader has it open; False when stopping."""
        waited = False
        while not self._stop.is_set():
            with self._lock:
                master = self._master
            if master is None or (self._wait_for_reader and not _has_reader(master)):
                waited = True
                self._stop.wait(0.05)
                continue
            return not (waited and self._stop.wait(_READER_SETTLE_S))
        return False

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            if not self._await_reader():
                return False
            with self._lock:
                master = self._master
            if master is None:
                continue
            try:
                _, writable, _ = select.select([], [master], [], 0.1)
                if writable:
                    view = view[os.write(master, view) :]
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                continue  # unplugged under our feet: wait for a replug
        return True

    def _drain(self, timeout: float = 5.0) -> None:
        """Wait until the reader has taken everything from the pty's input queue."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            deadline = time.monotonic() + timeout
            buf = array.array("i", [0])
            empty = 0
            # Written bytes pass through the kernel's flip buffer before they count as readable,
            # so the queue must stay empty for a few looks in a row.
            while time.monotonic() < deadline and empty < 5:
                fcntl.ioctl(fd, termios.FIONREAD, buf)
                empty = empty + 1 if buf[0] == 0 else 0
                if self._stop.wait(0.01):
                    return
        finally:
            os.close(fd)


def _has_reader(master: int) -> bool:
    p = select.poll()
    p.register(master, select.POLLHUP)
    return not any(ev & select.POLLHUP for _, ev in p.poll(0))


def _span(text: str) -> tuple[float, float]:
    a, sep, b = text.partition(":")
    try:
        if sep and float(a) < float(b):
            return float(a), float(b)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected START:END in track seconds, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    """CLI: print the device path, write the source, exit 0 when done (or on SIGINT/SIGTERM)."""
    ap = argparse.ArgumentParser(prog="python -m hw_sim.virtual_gps", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--track", type=Path, help="track CSV: t_s,lat,lon,speed_kmh,heading_deg")
    src.add_argument("--nmea", type=Path, help="recorded NMEA log to replay")
    ap.add_argument("--link", type=Path, help="stable symlink to the pty, re-pointed on replug")
    ap.add_argument("--fast", action="store_true", help="write as fast as the reader reads")
    ap.add_argument("--loop", action="store_true", help="start over at the end")
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed factor (default 1)")
    ap.add_argument("--rate", type=float, default=1.0, help="epochs per second for a track (default 1)")
    ap.add_argument("--start", type=datetime.fromisoformat, help="UTC start time of a track, ISO 8601")
    ap.add_argument("--no-wait", action="store_true", help="write before any reader has opened the pty")
    ap.add_argument("--bad-checksum-every", type=int, default=0, metavar="N")
    ap.add_argument("--partial-every", type=int, default=0, metavar="N")
    ap.add_argument("--garbage-every", type=int, default=0, metavar="N")
    ap.add_argument("--no-fix", type=_span, metavar="START:END", help="no fix between these track seconds")
    ap.add_argument("--unplug-after", type=int, metavar="EPOCHS", help="close the pty after N epochs")
    args = ap.parse_args(argv)
    try:
        source: Path | list[TrackPoint] = args.nmea if args.nmea else load_track(args.track)
        if args.nmea and not args.nmea.is_file():
            raise TrackError(f"{args.nmea}: no such file")
    except (TrackError, OSError) as e:
        print(f"virtual_gps: {e}", file=sys.stderr)
        return 2
    start = args.start.replace(tzinfo=args.start.tzinfo or UTC) if args.start else None
    faults = Faults(args.bad_checksum_every, args.partial_every, args.garbage_every, args.no_fix, args.unplug_after)
    gps = VirtualGps(
        source,
        realtime=not args.fast,
        start_time=start,
        loop=args.loop,
        speed=args.speed,
        rate_hz=args.rate,
        link=args.link,
        faults=faults,
        wait_for_reader=not args.no_wait,
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    print(gps.start(), flush=True)
    while not stopping.is_set() and not gps.wait_done(0.2):
        pass
    gps.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
