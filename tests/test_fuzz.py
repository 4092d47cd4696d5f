"""Property-based fuzzing (Hypothesis) of what takes input from outside the car's own code: the NMEA assembler,
the config loader, the watchlist importers, the signed-update parser and `picar read`'s image loading.

Two profiles: "ci" (the default: a bounded number of examples, derandomized so CI is reproducible, no
deadline so a loaded machine never fails on time) and "soak" (many more examples, random each run):
    HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest -p no:cacheprovider tests/test_fuzz.py
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time as dtime
from functools import reduce
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from picar.sources.nmea import NmeaAssembler

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
           "print_blob": True}
settings.register_profile("ci", max_examples=150, derandomize=True, **_COMMON)
settings.register_profile("soak", max_examples=25_000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example (pytest's tmp_path is one per test, shared by all its examples)."""
    with tempfile.TemporaryDirectory(prefix="picar-fuzz-") as d:
        yield Path(d)


# -- NMEA assembler -------------------------------------------------------------------------------------


def checksummed(body: str) -> str:
    return f"${body}*{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


TIMES = ("120000", "120001", "120001.50", "120002", "235959", "")
# Field junk: any Latin-1 character but the sentence delimiters $ * , (the stream tests add those as noise).
junk_text = st.text(st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="$*,"), max_size=12)


@st.composite
def coord(draw: st.DrawFn, degree_digits: int, hemis: str) -> tuple[str, str, float | None]:
    """(field, hemisphere, value if well formed): degrees and minutes drawn past their limits too."""
    if draw(st.integers(0, 9)) == 0:
        return draw(junk_text), draw(st.sampled_from([*hemis, "", "X"])), None
    deg = draw(st.integers(0, 10**degree_digits - 1))
    minutes = draw(st.integers(0, 99))
    frac = draw(st.integers(0, 9999))
    hemi = draw(st.sampled_from([*hemis, *hemis, "", "x"]))
    value = deg + (minutes + frac / 10000) / 60
    signum = -1 if hemi.upper() == hemis[1] else 1
    return f"{deg:0{degree_digits}d}{minutes:02d}.{frac:04d}", hemi, signum * value


@st.composite
def nmea_sentence(draw: st.DrawFn) -> tuple[str, str | None, tuple[float, float] | None]:
    """A sentence with a correct checksum whose fields are plausible, out of range or junk: (line, time of
    day if it claims a fix, position if well formed)."""
    talker = draw(st.sampled_from(["GP", "GN", "GL", "BD", "XX"]))
    kind = draw(st.sampled_from(["RMC", "GGA", "GLL", "VTG", "GSA", "ZDA", "GSV"]))
    t = draw(st.sampled_from(TIMES) | junk_text)
    lat, lat_h, lat_v = draw(coord(2, "NS"))
    lon, lon_h, lon_v = draw(coord(3, "EW"))
    status = draw(st.sampled_from(["A", "V", "", "a", "Z"]))
    mode = draw(st.sampled_from(["", "A", "D", "N", "M", "S", "E"]))
    quality = draw(st.sampled_from(["0", "1", "2", "6", "7", "8", "9", "", "1.5", "x"]))
    num = st.sampled_from(["", "0", "1.5", "22.4", "359.9", "361", "-1", "99.99", "1e400", "nan", "x"])
    day = draw(st.sampled_from(["230394", "010126", "310299", "290223", "", "999999", "1234"]))
    claims = False
    if kind == "RMC":
        fields = [t, status, lat, lat_h, lon, lon_h, draw(num), draw(num), day, "", "", mode]
        claims = status.upper() == "A" and mode.upper() != "N"
    elif kind == "GGA":
        fields = [t, lat, lat_h, lon, lon_h, quality, draw(num), draw(num), draw(num), "M", "", "M", "", ""]
        claims = quality in ("1", "2", "6")
    elif kind == "GLL":
        fields = [lat, lat_h, lon, lon_h, t, status, mode]
        claims = status.upper() == "A" and mode.upper() != "N"
    elif kind == "VTG":
        fields = [draw(num), "T", "", "M", draw(num), "N", draw(num), "K", mode]
    elif kind == "GSA":
        fields = ["A", draw(st.sampled_from(["1", "2", "3", "4", ""])), *[""] * 12, draw(num), draw(num), draw(num)]
    elif kind == "ZDA":
        fields = [t, draw(st.sampled_from(["23", "31", "0", ""])), draw(st.sampled_from(["02", "11", "13", ""])),
                  draw(st.sampled_from(["2026", "1999", "0", ""])), "00", "00"]
    else:
        fields = ["3", "1", "11", "07", "79", "048", "42"]
    n_fields = draw(st.integers(0, len(fields)))
    cut = fields if draw(st.booleans()) else fields[:n_fields]  # sentences cut short by old firmware
    pos = None if lat_v is None or lon_v is None else (lat_v, lon_v)
    clock = t if claims and t in TIMES and t else None
    return checksummed(f"{talker}{kind}," + ",".join(cut)), clock, pos


noise = st.binary(max_size=40) | st.sampled_from(
    [b"\xb5\x62\x01\x07\x5c\x00", b"\0\0\0", b"$GPRMC,123519,A*00", b"$PUBX,00*33", b"$", b"*", b"\r", b"$GP"])


def check_epochs(asm: NmeaAssembler, epochs: list[Any], claimed: dict[str, set[tuple[float, float]]]) -> None:
    c = asm.counters
    assert c.epochs == len(epochs) and c.fixes == sum(e.fix is not None for e in epochs)
    assert c.fixes <= c.epochs <= c.sentences
    for e in epochs:
        assert e.time is None or e.time.tzinfo is not None
        if e.fix is None:
            continue
        f = e.fix
        assert -90 <= f.lat <= 90 and -180 <= f.lon <= 180 and (f.lat, f.lon) != (0, 0)
        assert math.isfinite(f.lat) and math.isfinite(f.lon)
        for v in (f.speed_kmh, f.heading_deg, f.hdop, f.alt_m):
            assert v is None or math.isfinite(v)
        # A fix only where a sentence of that time said it had one, at a position one of them gave.
        key = f.time.time().replace(tzinfo=None).strftime("%H%M%S.%f")
        assert key in claimed, (key, claimed)
        assert any(abs(f.lat - a) < 1e-9 and abs(f.lon - b) < 1e-9 for a, b in claimed[key]), (f, claimed[key])


def time_key(t: str) -> str:
    whole, _, frac = t.partition(".")
    return dtime(int(whole[:2]), int(whole[2:4]), int(whole[4:6]), int(frac.ljust(6, "0") or 0)).strftime(
        "%H%M%S.%f")


@given(st.lists(st.tuples(nmea_sentence(), st.sampled_from(["\r\n", "\n", ""]), noise | st.just(b"")), max_size=40),
       st.integers(1, 64))
# Found by this test: a sentence with a right checksum but a bad field (here RMC's empty status) opened an epoch
# before its fields were decoded, so a rejected sentence gave a phantom no-fix epoch (or ended a good one early).
@example([(("$GPRMC,*67", None, None), "\r\n", b"")], 1)
def test_nmea_stream_of_sentences_and_junk(items: list[Any], chunk: int) -> None:
    """Valid sentences (right checksums, any fields) and junk as a serial port delivers them, in chunks."""
    asm = NmeaAssembler(monotonic=lambda: 1000.0, wall=lambda: 1.77e9)
    stream = b""
    claimed: dict[str, set[tuple[float, float]]] = {}
    for (line, clock, pos), end, junk in items:
        stream += line.encode("latin-1") + end.encode() + junk
        if clock is not None and pos is not None:
            claimed.setdefault(time_key(clock), set()).add(pos)
    epochs = []
    for i in range(0, len(stream), chunk):
        epochs += asm.feed_bytes(stream[i:i + chunk])
    epochs += asm.flush()
    check_epochs(asm, epochs, claimed)


@given(st.lists(nmea_sentence(), max_size=40))
def test_nmea_lines_are_each_counted_once(items: list[Any]) -> None:
    """One checksummed sentence per line: each is used, ignored or unparsed, exactly once; never a bad checksum."""
    asm = NmeaAssembler(monotonic=lambda: 1000.0, wall=lambda: 1.77e9)
    claimed: dict[str, set[tuple[float, float]]] = {}
    epochs = []
    for n, (line, clock, pos) in enumerate(items, start=1):
        if clock is not None and pos is not None:
            claimed.setdefault(time_key(clock), set()).add(pos)
        before = asm.counters.as_dict()
        epochs += asm.feed_epochs(line)
        after = asm.counters.as_dict()
        assert after["lines"] == n
        assert after["bad_checksum"] == before["bad_checksum"]
        moved = sum(after[k] - before[k] for k in ("sentences", "ignored", "unparsed", "overlong"))
        assert moved == 1, (line, before, after)
    epochs += asm.flush()
    check_epochs(asm, epochs, claimed)


@given(st.lists(st.binary(max_size=300), max_size=30))
@example([checksummed("GPGGA,000000,0000.0000,N,00000.0000,E,1,08,0.9,545.4,M,46.9,M,,").encode() + b"\n"])
def test_nmea_arbitrary_bytes(chunks: list[bytes]) -> None:
    asm = NmeaAssembler()
    epochs = [e for c in chunks for e in asm.feed_bytes(c)] + asm.flush()
    check_epochs(asm, epochs, {})  # random bytes never hold a whole sentence with a fix (and 0,0 is none)
