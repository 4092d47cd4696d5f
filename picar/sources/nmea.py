"""NMEA 0183 stream to receiver epochs: pure, clock-injectable, no I/O.

A GPS receiver sends a burst of sentences per epoch (RMC, VTG, GGA, GSA, GLL, ...), all describing
the same instant. `NmeaAssembler` merges them into one `Epoch`, which carries a `Fix` only when
the receiver said it had one. Garbage is normal input on a serial line (partial lines after a
reconnect, u-blox binary messages, NULs, proprietary sentences): it is counted and logged, never
raised.

Epoch boundaries: an epoch ends when a timed sentence (RMC, GGA, GLL) carries a different UTC time,
or when a timed sentence type repeats while the time is unknown. To avoid waiting one whole
period for that, the assembler learns which sentence types made up the previous epoch and emits
the current one as soon as all of them have arrived.

Position: each epoch takes it from whichever of GGA, RMC and GLL carries a valid one (see `_build` for
which wins when they disagree); a receiver that sends RMC once and then only GGA and GLL still gives a
position per epoch. Date: only RMC and ZDA carry one; epochs without it continue from the last dated
epoch, across midnight.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pynmea2

from picar.isotime import utc_iso
from picar.sources.nmea_fields import (
    FieldError,
    field_float,
    field_int,
    field_position,
    field_raw,
    field_status,
    field_time,
    rmc_date,
    zda_date,
)
from picar.types import Fix, FixQuality

log = logging.getLogger("picar.gps_nmea")  # name kept from before the package move: log lines carry it

KNOTS_TO_KMH = 1.852
MAX_LINE = 256  # NMEA allows 82 characters; proprietary sentences run longer, binary junk longer still
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})
USED_TYPES = frozenset({"RMC", "GGA", "VTG", "GSA", "GLL", "ZDA"})
TIMED_TYPES = frozenset({"RMC", "GGA", "GLL"})
VALID_GGA_QUALITY = frozenset({1, 2, 3, 4, 5, 6})  # 0 no fix, 7 manual input, 8 simulator
# Not a measured position, so never the car's: GGA quality 7 (manual input) and 8 (simulator), and the
# RMC/GLL mode indicator (NMEA 2.3 on) M (manual input) and S (simulator). One such sentence makes the
# whole epoch fix-less: a receiver in simulator mode fills its other sentences from the simulation too.
UNMEASURED_GGA_QUALITY = frozenset({7, 8})
UNMEASURED_MODES = frozenset({"M", "S"})
_CHECKSUMMED = re.compile(r"([^*]*)\*([0-9A-Fa-f]{2})(.*)", re.S)
_ADDRESS = re.compile(r"[A-Z][A-Z0-9]{2,5}[,*]")
_WARN_LIMIT = 20  # warnings per problem kind before they drop to debug level
@dataclass(frozen=True)
class Epoch:
    """Everything one receiver epoch said. `fix` is None when the receiver had no position."""

    time: datetime | None
    fix: Fix | None
    sats: int | None = None
    hdop: float | None = None
    received_monotonic: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The `picar gps --json` object; a no-fix epoch has fix "none" and null position."""
        if self.fix is not None:
            return self.fix.to_json()
        return {
            "time": None if self.time is None else utc_iso(self.time),
            "lat": None,
            "lon": None,
            "fix": "none",
            "speed_kmh": None,
            "heading_deg": None,
            "sats": self.sats,
            "hdop": self.hdop,
        }


@dataclass
class NmeaCounters:
    """What came down the line. `unparsed` covers junk, partial fragments and nonsense fields."""

    lines: int = 0
    sentences: int = 0  # accepted and used
    bad_checksum: int = 0  # missing or wrong checksum
    unparsed: int = 0
    ignored: int = 0  # valid but not used: GSV, TXT, proprietary $P..., other talkers
    overlong: int = 0
    epochs: int = 0
    fixes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _EpochState:
    time: dtime | None
    received: float
    kinds: set[str] = field(default_factory=set)
    emitted: bool = False
    rmc_valid: bool | None = None
    rmc_pos: tuple[float, float] | None = None
    rmc_date: date | None = None
    rmc_speed_kmh: float | None = None
    rmc_course: float | None = None
    gga_quality: int | None = None
    gga_pos: tuple[float, float] | None = None
    sats: int | None = None
    gga_hdop: float | None = None
    alt_m: float | None = None
    gsa_mode: int | None = None
    gsa_hdop: float | None = None
    vtg_speed_kmh: float | None = None
    vtg_course: float | None = None
    gll_valid: bool | None = None
    gll_pos: tuple[float, float] | None = None
    unmeasured: bool = False  # a sentence said manual input or simulator


class NmeaAssembler:
    """Turns NMEA lines (or raw bytes) into epochs; keeps counters; never raises on bad input."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_line: int = MAX_LINE,
    ) -> None:
        self.counters = NmeaCounters()
        self._monotonic = monotonic
        self._wall = wall
        self._max_line = max_line
        self._cur: _EpochState | None = None
        self._expected: frozenset[str] = frozenset()
        self._last_date: tuple[date, dtime, float] | None = None  # last dated epoch: day, time, received
        self._buf = bytearray()
        self._discarding = False
        self._warned: dict[str, int] = {}

    # -- input -------------------------------------------------------------------------------------

    def feed_line(self, line: bytes | str) -> Fix | None:
        """Feed one line; return the Fix of an epoch this line completed, if it had one."""
        fixes = [e.fix for e in self.feed_epochs(line) if e.fix is not None]
        return fixes[-1] if fixes else None

    def feed_epochs(self, line: bytes | str) -> list[Epoch]:
        """Feed one line; return the epochs it completed (usually none or one), fix or not."""
        text = line.decode("latin-1") if isinstance(line, bytes) else line
        self.counters.lines += 1
        if len(text) > self._max_line:
            self.counters.overlong += 1
            self._warn("overlong", text, f"line longer than {self._max_line} characters")
            return []
        out: list[Epoch] = []
        head, *fragments = text.split("$")
        if _junk(head):
            self._reject("unparsed", head, "bytes outside any sentence")
        for frag in fragments:
            out.extend(self._sentence(frag))
        return out

    def feed_bytes(self, data: bytes) -> list[Epoch]:
        """Feed raw bytes from a serial port; lines are split here with a bounded buffer."""
        out: list[Epoch] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._discarding:
                self._discarding = False
                continue
            out.extend(self.feed_epochs(line))
        if len(self._buf) > self._max_line:
            # No newline in sight (binary stream, wrong baud rate): drop it rather than grow forever.
            self.counters.lines += 1
            self.counters.overlong += 1
            self._warn("overlong", bytes(self._buf).decode("latin-1"), "no line end within limit")
            self._buf.clear()
            self._discarding = True
        return out

    def flush(self) -> list[Epoch]:
        """End of stream: emit the epoch still being assembled (if not emitted yet)."""
        out: list[Epoch] = []
        if self._buf and not self._discarding:
            out.extend(self.feed_epochs(bytes(self._buf)))
        self._buf.clear()
        self._discarding = False
        epoch = self._close()
        if epoch is not None:
            out.append(epoch)
        return out

    def reset_stream(self) -> None:
        """Forget partial input after a reconnect; counters and learned epoch layout stay."""
        self._buf.clear()
        self._discarding = False
        self._cur = None

    # -- sentences ---------------------------------------------------------------------------------

    def _sentence(self, frag: str) -> list[Epoch]:
        if _ADDRESS.match(frag) is None:
            self._reject("unparsed", "$" + frag, "'$' not followed by a sentence address")
            return []
        m = _CHECKSUMMED.fullmatch(frag)
        if m is None:
            self._reject("bad_checksum", "$" + frag, "missing checksum (partial line?)")
            return []
        body, given, rest = m.groups()
        if _junk(rest):
            self._reject("unparsed", rest, "bytes after checksum")
        if pynmea2.NMEASentence.checksum(body) != int(given, 16):
            self._reject("bad_checksum", "$" + frag, "checksum does not match")
            return []
        try:
            msg = pynmea2.parse(f"${body}*{given}", check=True)
        except pynmea2.SentenceTypeError:
            self._ignore()
            return []
        except pynmea2.ParseError as e:
            self._reject("unparsed", "$" + frag, f"pynmea2: {e.args[0][0] if e.args else e}")
            return []
        if not isinstance(msg, pynmea2.TalkerSentence):
            self._ignore()  # proprietary ($P...) and query sentences
            return []
        kind = msg.sentence_type
        if msg.talker not in TALKERS or kind not in USED_TYPES:
            self._ignore()
            return []
        try:
            if kind == "ZDA":
                self._zda(msg)
                return []
            return self._accept(kind, msg)
        except FieldError as e:
            self._reject("unparsed", "$" + body, str(e))
            return []

    def _accept(self, kind: str, msg: pynmea2.TalkerSentence) -> list[Epoch]:
        # Every field is decoded before the epoch is touched: a sentence with a bad field (FieldError) neither
        # ends the epoch in progress nor starts one.
        merge = _DECODE[kind](msg)
        out: list[Epoch] = []
        if kind in TIMED_TYPES:
            t = field_time(msg)
            cur = self._cur
            if cur is not None and (t != cur.time or (t is None and kind in cur.kinds)):
                closed = self._close()
                if closed is not None:
                    out.append(closed)
            if self._cur is None:
                self._cur = _EpochState(time=t, received=self._monotonic())
        cur = self._cur
        if cur is None:
            # A timeless sentence before the first timed one belongs to an epoch we missed.
            self.counters.ignored += 1
            return out
        merge(cur)
        self.counters.sentences += 1
        cur.kinds.add(kind)
        if not cur.emitted and self._expected and self._expected <= cur.kinds:
            cur.emitted = True
            out.append(self._build(cur))
        return out

    def _zda(self, msg: pynmea2.TalkerSentence) -> None:
        # ZDA only dates the epochs around it (it is not part of the learned epoch layout): the next
        # epoch built continues from this date and time, as from an RMC's.
        t, day = field_time(msg), zda_date(msg)
        self.counters.sentences += 1
        if t is not None and day is not None:
            self._last_date = (day, t.replace(tzinfo=None), self._monotonic())

    def _close(self) -> Epoch | None:
        cur, self._cur = self._cur, None
        if cur is None:
            return None
        self._expected = frozenset(cur.kinds)
        return None if cur.emitted else self._build(cur)

    # -- merging -------------------------------------------------------------------------------------

    def _build(self, st: _EpochState) -> Epoch:
        when = self._datetime(st)
        sats = st.sats
        hdop = st.gga_hdop if st.gga_hdop is not None else st.gsa_hdop
        self.counters.epochs += 1
        # Any sentence that says "no fix" or "not measured" is believed over the others.
        vetoed = (
            st.rmc_valid is False
            or st.gll_valid is False
            or st.gga_quality == 0
            or st.gsa_mode == 1
            or st.unmeasured
        )
        # When the sentences of one epoch disagree on the position (fleet logs hold devices whose GGA, GLL
        # and RMC of one time carry different positions), GGA wins: its quality, satellites, HDOP and altitude
        # describe the fix, so the position they qualify is the one reported with them. Then RMC (a
        # validity flag, and the date, speed and course of the fix), then GLL (a position and a flag only).
        candidates = (
            (st.gga_quality in VALID_GGA_QUALITY, st.gga_pos),
            (bool(st.rmc_valid), st.rmc_pos),
            (bool(st.gll_valid), st.gll_pos),
        )
        pos = next((p for ok, p in candidates if ok and p is not None), None)
        if vetoed or pos is None or when is None:
            return Epoch(when, None, sats, hdop, st.received)
        quality: FixQuality
        if st.gsa_mode in (2, 3):
            quality = "3d" if st.gsa_mode == 3 else "2d"
        else:
            quality = "3d" if st.alt_m is not None and st.gga_quality in VALID_GGA_QUALITY else "2d"
        fix = Fix(
            time=when,
            lat=pos[0],
            lon=pos[1],
            fix=quality,
            speed_kmh=st.rmc_speed_kmh if st.rmc_speed_kmh is not None else st.vtg_speed_kmh,
            heading_deg=st.rmc_course if st.rmc_course is not None else st.vtg_course,
            sats=sats,
            hdop=hdop,
            alt_m=st.alt_m if quality == "3d" else None,
            received_monotonic=st.received,
        )
        self.counters.fixes += 1
        return Epoch(when, fix, sats, hdop, st.received)

    def _datetime(self, st: _EpochState) -> datetime | None:
        if st.time is None:
            return None
        t = st.time.replace(tzinfo=None)
        if st.rmc_date is not None:
            self._last_date = (st.rmc_date, t, st.received)
            return datetime.combine(st.rmc_date, t, UTC)
        if self._last_date is not None:
            # Continue from the last dated epoch (RMC, ZDA, or one dated this way): the day that puts this
            # time nearest to that epoch's time plus the time passed on our monotonic clock since. Each
            # epoch moves the anchor on, so a receiver that sent its one date hours ago still turns the
            # day at midnight, and a receiver silent for hours does not fall back a day.
            d, last_t, last_received = self._last_date
            expect = datetime.combine(d, last_t, UTC) + timedelta(seconds=st.received - last_received)
            days = (expect.date() + timedelta(days=k) for k in (-1, 0, 1))
            when = min((datetime.combine(day, t, UTC) for day in days), key=lambda c: abs(c - expect))
            self._last_date = (when.date(), t, st.received)
            return when
        # Never saw a date (a GGA-only receiver): take the day that puts the time nearest the clock.
        now = datetime.fromtimestamp(self._wall(), UTC)
        days = (now.date() + timedelta(days=k) for k in (-1, 0, 1))
        return min((datetime.combine(d, t, UTC) for d in days), key=lambda c: abs(c - now))

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _reject(self, counter: str, content: str, why: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self._warn(counter, content, why)

    def _ignore(self) -> None:
        self.counters.ignored += 1

    def _warn(self, kind: str, content: str, why: str) -> None:
        n = self._warned.get(kind, 0) + 1
        self._warned[kind] = n
        level = logging.WARNING if n <= _WARN_LIMIT else logging.DEBUG
        suffix = " (further ones logged at debug level)" if n == _WARN_LIMIT else ""
        log.log(level, "NMEA %s: %s: %r%s", kind, why, _shorten(content), suffix)


def _junk(s: str) -> bool:
    return bool(s.strip(" \t\r\n"))


def _shorten(s: str, limit: int = 80) -> str:
    s = s.rstrip("\r\n")
    return s if len(s) <= limit else s[:limit] + "..."


# Each decoder reads every field of its sentence (FieldError on a bad one) and returns how to merge them into
# an epoch, so a bad field leaves the epochs as they were.
Merge = Callable[[_EpochState], None]


def _decode_rmc(msg: pynmea2.TalkerSentence) -> Merge:
    mode = field_raw(msg, "mode_indicator").upper()
    valid = field_status(msg, "status") and mode != "N"
    pos = field_position(msg)
    day = rmc_date(msg)
    knots = field_float(msg, "spd_over_grnd", 0, 2000)
    course = field_float(msg, "true_course", 0, 360)

    def merge(st: _EpochState) -> None:
        st.rmc_valid, st.rmc_pos, st.rmc_course = valid, pos, course
        st.unmeasured |= mode in UNMEASURED_MODES
        st.rmc_date = day or st.rmc_date
        st.rmc_speed_kmh = None if knots is None else knots * KNOTS_TO_KMH

    return merge


def _decode_gga(msg: pynmea2.TalkerSentence) -> Merge:
    quality = field_int(msg, "gps_qual", 0, 9)
    pos = field_position(msg)
    sats = field_int(msg, "num_sats", 0, 99)
    hdop = field_float(msg, "horizontal_dil", 0, 99.99)
    alt = field_float(msg, "altitude", -1000, 100000)

    def merge(st: _EpochState) -> None:
        st.gga_quality, st.gga_pos, st.sats, st.gga_hdop, st.alt_m = quality, pos, sats, hdop, alt
        st.unmeasured |= quality in UNMEASURED_GGA_QUALITY

    return merge


def _decode_gsa(msg: pynmea2.TalkerSentence) -> Merge:
    mode = field_int(msg, "mode_fix_type", 1, 3)
    hdop = field_float(msg, "hdop", 0, 99.99)

    def merge(st: _EpochState) -> None:
        if mode is not None:
            # Multi-constellation receivers send one GSA per system: keep the best mode.
            st.gsa_mode = max(mode, st.gsa_mode or 0)
        if hdop is not None:
            st.gsa_hdop = hdop

    return merge


def _decode_vtg(msg: pynmea2.TalkerSentence) -> Merge:
    course = field_float(msg, "true_track", 0, 360)
    kmh = field_float(msg, "spd_over_grnd_kmph", 0, 4000)
    if kmh is None:
        knots = field_float(msg, "spd_over_grnd_kts", 0, 2000)
        kmh = None if knots is None else knots * KNOTS_TO_KMH

    def merge(st: _EpochState) -> None:
        st.vtg_course, st.vtg_speed_kmh = course, kmh

    return merge


def _decode_gll(msg: pynmea2.TalkerSentence) -> Merge:
    mode = field_raw(msg, "faa_mode").upper()
    valid = field_status(msg, "status") and mode != "N"
    pos = field_position(msg)

    def merge(st: _EpochState) -> None:
        st.gll_valid, st.gll_pos = valid, pos
        st.unmeasured |= mode in UNMEASURED_MODES

    return merge


_DECODE: dict[str, Callable[[pynmea2.TalkerSentence], Merge]] = {
    "RMC": _decode_rmc,
    "GGA": _decode_gga,
    "GSA": _decode_gsa,
    "VTG": _decode_vtg,
    "GLL": _decode_gll,
}
