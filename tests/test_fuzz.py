"""Property-based fuzzing (Hypothesis) of what takes input from outside the car's own code: the NMEA assembler,
the config loader, the watchlist importers, the signed-update parser and `picar read`'s image loading.

Two profiles: "ci" (the default: a bounded number of examples, derandomized so CI is reproducible, no
deadline so a loaded machine never fails on time) and "soak" (many more examples, random each run):
    HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest -p no:cacheprovider tests/test_fuzz.py
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time as dtime
from functools import reduce
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from picar.config import SECTIONS, Config, ConfigError, load_config, parse_config
from picar.sources.nmea import NmeaAssembler
from picar.tools import read as read_tool
from picar.tools.image_header import image_size
from picar.tools.read import MAX_IMAGE_PIXELS, load_photo
from picar.watchlist.entries import ENTRY_FIELDS
from picar.watchlist.io import CSV_COLUMNS, LIST_CODES, WatchlistImportError, read_file
from picar.watchlist.signing import SignatureError, generate_keypair, load_private_key, open_envelope, sign
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import UpdateError, parse_update, snapshot_payload

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


# -- config loader ----------------------------------------------------------------------------------------

toml_scalar = (st.text(max_size=20) | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.booleans()
               | st.datetimes() | st.sampled_from(["", "0", "/dev/video0", "rtsp://cam/1", ".", "127.0.0.1", "a"]))
toml_value = st.recursive(toml_scalar, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4), max_leaves=12)
KEYS = {name: [f.name for f in dataclasses.fields(table) if f.init] for name, table in SECTIONS.items()}


@st.composite
def config_dict(draw: st.DrawFn) -> dict[str, Any]:
    """Real sections and keys (and random ones) holding any TOML-shaped value."""
    def table(section: str) -> dict[str, Any]:
        names = st.sampled_from(KEYS.get(section) or ["x"]) | st.text(min_size=1, max_size=10)
        return draw(st.dictionaries(names, toml_value, max_size=6))

    data: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(list(SECTIONS)) | st.text(min_size=1, max_size=10), max_size=8)):
        if section == "cameras":
            data[section] = draw(st.lists(st.builds(lambda: table("cameras")) | toml_value, max_size=3))
        else:
            data[section] = table(section) if draw(st.integers(0, 5)) else draw(toml_value)
    return data


def assert_names_keys(problems: list[str], data: Any, prefix: str = "") -> None:
    keys = [*SECTIONS, *(data if isinstance(data, dict) else ())]
    assert problems
    for p in problems:
        assert p.startswith(prefix), p
        assert any(p[len(prefix):].startswith(str(k)) for k in keys), p


@given(config_dict())
@example({"vehicle": {"id": "car-1"}, "cameras": [{"name": "front", "source": 0}]})
def test_config_dicts_parse_or_name_every_key(data: dict[str, Any]) -> None:
    with scratch() as d:
        try:
            cfg = parse_config(data, d)
        except ConfigError as exc:
            assert_names_keys(exc.problems, data)
        else:
            assert isinstance(cfg, Config) and cfg.cameras


def toml_key(k: str) -> str:
    return json.dumps(k)


def toml_text(v: Any) -> str:
    """A value as TOML (json's strings are TOML basic strings; json has no datetimes, inf or nan)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_text(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)


@given(config_dict() | st.builds(dict), st.binary(max_size=40) | st.just(b""))
def test_config_files_load_or_name_file_and_key(data: dict[str, Any], tail: bytes) -> None:
    """A file written from TOML-shaped data, sometimes with junk after it: a Config or problems naming file and key."""
    text = "".join(f"{toml_key(k)} = {toml_text(v)}\n" for k, v in data.items()).encode() + tail
    with scratch() as d:
        path = d / "picar.toml"
        path.write_bytes(text)
        try:
            load_config(path)
        except ConfigError as exc:
            if not any(": TOML syntax error" in p or ": not valid UTF-8" in p for p in exc.problems):
                assert_names_keys(exc.problems, data, f"{path}: ")
            assert all(p.startswith(f"{path}: ") for p in exc.problems)


# -- watchlist importers ----------------------------------------------------------------------------------

cell = (st.text(max_size=12) | st.sampled_from(["ABC123", "SV", "stolen_vehicle", "1", "yes", "CA", "2026-01-01",
                                                  '"', '""', ",", "\r", "\n", "x" * 600, "\ufeff"]))
encodings = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(CSV_COLUMNS) | st.text(max_size=6), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(cell, max_size=len(header) + 1), max_size=6))
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        return ",".join('"' + c.replace('"', '""') + '"' if quote else c for c in cells)

    text = "\r\n".join(line(r) for r in [header, *rows])
    return text.encode(draw(encodings), errors="replace")


@st.composite
def ncic_bytes(draw: st.DrawFn) -> bytes:
    def record() -> str:
        code = draw(st.sampled_from([*LIST_CODES, "XX", ""]))
        parts = [code.ljust(4), draw(cell)[:10].ljust(10), draw(cell)[:2].ljust(2), draw(cell)[:2].ljust(2),
                 draw(st.sampled_from(["20261231", "20260230", "", "abcdefgh"])).ljust(8), draw(cell)[:20].ljust(20),
                 draw(st.sampled_from(["Y", "N", " ", "?"])), draw(cell)[:90]]
        return "".join(parts)[: draw(st.integers(0, 140))]

    lines = draw(st.lists(st.builds(record) | cell | st.just("# comment"), max_size=6))
    return "\n".join(lines).encode(draw(encodings), errors="replace")


@given(csv_bytes() | ncic_bytes() | st.binary(max_size=300), st.sampled_from(["list.csv", "extract.txt"]))
@example(b"\xef\xbb\xbfplate,list\r\nABC123,SV\r\n", "list.csv")
@example("plate,description\nABC123,caf\xe9\n".encode("latin-1"), "list.csv")
@example(b'plate\n"' + b"x" * 200_000, "list.csv")
def test_watchlist_imports_or_names_file_and_line(data: bytes, name: str) -> None:
    with scratch() as d:
        path = d / name
        path.write_bytes(data)
        try:
            records = read_file(path)
        except WatchlistImportError as exc:
            msg = str(exc)
            assert msg.startswith(name), msg
            assert " line " in msg or msg == f"{name}: empty file, expected a header row", msg
        else:
            for rec in records:
                assert set(rec) <= set(ENTRY_FIELDS) and rec["plate"]


# -- signed updates ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hq_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys") / "hq")


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)
entry_value = json_value | st.sampled_from(["ABC123", "AB*12", "stolen_vehicle", "CA", 1, 9, 0, True,
                                            "2026-01-01", "2026-01-01T00:00:00Z"])


@st.composite
def update_object(draw: st.DrawFn) -> Any:
    """A JSON value shaped like an update: the right header fields mostly, any values and entries."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    obj: dict[str, Any] = {"format": "picar-watchlist/1", "version": draw(st.integers(-1, 2**54) | json_value),
                           "created_at": draw(st.sampled_from(["2026-06-01T00:00:00Z", "yesterday", 0]))}
    kind = draw(st.sampled_from(["snapshot", "delta", "other"]))
    obj["type"] = kind
    entries = st.lists(st.dictionaries(st.sampled_from(ENTRY_FIELDS) | st.text(max_size=6), entry_value, max_size=5)
                       | json_value, max_size=5)
    if kind == "delta":
        obj.update(base_version=draw(st.integers(-1, 5) | json_value), add=draw(entries), remove=draw(entries))
    else:
        obj["entries"] = draw(entries | json_value)
    extra = draw(st.dictionaries(st.sampled_from(["list_id", "fleet", "comment", "junk"]), json_value, max_size=2))
    return obj | extra


def fresh_store(d: Path, pub: Path | None, require: bool = True) -> WatchlistStore:
    s = WatchlistStore(d / "car", pub, require_signature=require)
    s.load()
    return s


@given(st.binary(max_size=400) | st.builds(lambda v: json.dumps(v).encode(), json_value))
def test_garbage_updates_are_rejected_not_raised(hq_keys: tuple[Path, Path], data: bytes) -> None:
    with scratch() as d:
        for store in (fresh_store(d, hq_keys[1]), fresh_store(d, None, require=False)):
            result = store.apply_update(data, "fuzz")
            assert not result.reason.startswith("internal error"), result
            if not store.require_signature and result.accepted:
                continue  # unsigned accepted by a car that allows it: only if it parsed as an update
            assert not result.accepted and store.version == 0
        for call in (lambda: open_envelope(data, None, False), lambda: parse_update(data)):
            try:
                call()
            except (SignatureError, UpdateError):
                pass


@given(update_object(), st.booleans())
def test_signed_update_values_apply_or_are_rejected(hq_keys: tuple[Path, Path], obj: Any, gz: bool) -> None:
    """Signed by the right key, so every check after the signature is exercised."""
    payload = json.dumps(obj).encode()
    if gz:
        payload = gzip.compress(payload, mtime=0)
    with scratch() as d:
        store = fresh_store(d, hq_keys[1])
        result = store.apply_update(sign(payload, load_private_key(hq_keys[0])), "fuzz")
        assert not result.reason.startswith("internal error"), result
        assert store.version == (result.update_version if result.accepted else 0)
        assert result.entries == len(store.current)


def flip(data: bytes, at: int, bit: int) -> bytes:
    out = bytearray(data)
    out[at % len(out)] ^= 1 << bit
    return bytes(out)


@given(st.lists(st.sampled_from(["ABC123", "XYZ987", "AB*123", "Q1"]), min_size=1, max_size=4, unique=True),
       st.sampled_from(["payload", "signature", "envelope"]), st.integers(0, 10**6), st.integers(0, 7))
def test_a_flipped_byte_is_never_accepted(hq_keys: tuple[Path, Path], plates: list[str], where: str, at: int,
                                          bit: int) -> None:
    payload = snapshot_payload([{"plate": p} for p in plates], version=7)
    envelope = sign(payload, load_private_key(hq_keys[0]))
    with scratch() as d:
        store = fresh_store(d, hq_keys[1])
        if where == "envelope":
            tampered = flip(envelope, at, bit)
        else:
            env = json.loads(envelope)
            env[where] = base64.b64encode(flip(base64.b64decode(env[where]), at, bit)).decode()
            tampered = json.dumps(env).encode()
        result = store.apply_update(tampered, "fuzz")
        if where != "envelope":
            assert not result.accepted, result
        elif result.accepted:
            # A flip that leaves the signed bytes as they were (JSON whitespace, the key_id hint's own name, a
            # base64 padding bit): what is in force is exactly what HQ signed.
            assert open_envelope(tampered, None, False).payload == payload
        assert store.version in (0, 7)


# -- picar read: image loading ----------------------------------------------------------------------------

MAGICS = [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\xff\xd8", b"\xff\xd8\xff\xc0\0\x11\x08", b"BM", b"RIFF\0\0\0\0WEBPVP8X",
          b"RIFF\0\0\0\0WEBPVP8L", b"RIFF\0\0\0\0WEBPVP8 ", b"II*\0\x08\0\0\0", b"MM\0*\0\0\0\x08", b"GIF87a",
          b"GIF89a", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"P6\n4 4\n255\n", b""]


@given(st.sampled_from(MAGICS), st.binary(max_size=300))
def test_any_file_is_an_image_or_a_per_file_error(magic: bytes, rest: bytes) -> None:
    with scratch() as d:
        path = d / "photo.jpg"
        path.write_bytes(magic + rest)
        size = image_size(path)
        decoded = read_tool.cv2.imread
        with mock.patch.object(read_tool.cv2, "imread", side_effect=decoded) as imread:
            result = load_photo(path)
        if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
            imread.assert_not_called()  # refused on its header alone
        if isinstance(result, str):
            assert result
        else:
            assert isinstance(result, np.ndarray) and result.ndim == 3 and size is not None
            assert result.shape[0] * result.shape[1] <= MAX_IMAGE_PIXELS


def header_claiming(fmt: str, w: int, h: int) -> bytes:
    if fmt == "png":
        return b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0) + b"\0" * 40
    if fmt == "jpeg":
        return b"\xff\xd8\xff\xfe\x00\x04hi\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\0" * 40
    if fmt == "bmp":
        return b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, w, -h) + b"\0" * 40
    if fmt == "gif":
        return b"GIF89a" + struct.pack("<HH", w, h) + b"\0" * 40
    if fmt == "webp":
        return (b"RIFF\0\0\0\0WEBPVP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (w - 1).to_bytes(3, "little")
                + (h - 1).to_bytes(3, "little") + b"\0" * 40)
    if fmt == "tiff":
        entries = struct.pack("<HHI4s", 256, 4, 1, struct.pack("<I", w)) + struct.pack("<HHI4s", 257, 4, 1,
                                                                                        struct.pack("<I", h))
        return b"II*\0\x08\0\0\0" + struct.pack("<H", 2) + entries + b"\0" * 40
    return f"P6\n# by hand\n{w} {h}\n255\n".encode() + b"\0" * 40


@st.composite
def huge_claim(draw: st.DrawFn) -> tuple[str, int, int]:
    fmt = draw(st.sampled_from(["png", "jpeg", "bmp", "gif", "webp", "tiff", "ppm"]))
    top = {"png": 2**31 - 1, "jpeg": 65535, "bmp": 2**31 - 1, "gif": 65535, "webp": 2**24, "tiff": 2**32 - 1,
           "ppm": 10**9}[fmt]
    w = draw(st.integers(MAX_IMAGE_PIXELS // top + 1, top))
    h = draw(st.integers(MAX_IMAGE_PIXELS // w + 1, top))
    return fmt, w, h


@given(huge_claim())
def test_a_header_claiming_a_huge_size_is_refused_before_decoding(claim: tuple[str, int, int]) -> None:
    fmt, w, h = claim
    with scratch() as d:
        path = d / f"bomb.{fmt}"
        path.write_bytes(header_claiming(fmt, w, h))
        assert image_size(path) == (w, h)
        with mock.patch.object(read_tool.cv2, "imread", side_effect=AssertionError("decoded")):
            result = load_photo(path)
        assert isinstance(result, str) and result.startswith(f"image too large: {w}x{h} pixels"), result
