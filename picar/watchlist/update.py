"""The watchlist update format (`picar-watchlist/1`): HQ encodes snapshots and deltas, the car parses them.

Both sides live here so the format is written down once (docs/watchlist.md describes it). A payload is
JSON, optionally gzipped; `sign` (picar.watchlist.signing) wraps it in an envelope before it is sent.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from picar.watchlist.entries import WatchlistError, check_text, format_time, parse_time

UPDATE_FORMAT = "picar-watchlist/1"
MAX_UPDATE_BYTES = 512 * 2**20  # a payload, as sent and after decompression; a 1M-entry snapshot is ~60 MB
MAX_VERSION = 2**53 - 1  # versions are integers 1..MAX_VERSION, exact in every JSON reader (IEEE doubles)
MAX_LIST_ID_LEN = 64


class UpdateError(ValueError):
    """A malformed or out-of-order update; the message names the field and value."""


def max_envelope_bytes() -> int:
    """The largest signed envelope: a MAX_UPDATE_BYTES payload in base64, plus the envelope's fields."""
    return MAX_UPDATE_BYTES // 3 * 4 + 4096


def check_version(value: object, name: str = "version", lowest: int = 1) -> int:
    """A version (or base_version) number: an integer lowest..MAX_VERSION; UpdateError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= MAX_VERSION:
        raise UpdateError(f"{name} {value!r} must be an integer {lowest} .. {MAX_VERSION} (2**53 - 1)")
    return value


def check_list_id(value: object) -> str:
    """The list (or fleet) id an update carries: a string of at most MAX_LIST_ID_LEN characters."""
    if not isinstance(value, str) or len(value) > MAX_LIST_ID_LEN:
        raise UpdateError(f"list_id {value!r} must be a string of at most {MAX_LIST_ID_LEN} characters")
    return value


def load_json(data: bytes | str, what: str = "payload") -> Any:
    """json.loads that raises UpdateError instead of ValueError or RecursionError (deep nesting)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise UpdateError(f"{what} is nested too deeply to be a watchlist update") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UpdateError(f"{what} is not valid JSON ({exc})") from None


class Records(Sized, Iterable[Mapping[str, Any]]):
    """A payload's entry array, decoded one record at a time from the payload text.

    A national snapshot is a million records: as one decoded list of dicts it took several hundred MiB
    and left the heap fragmented, so only each record's offset is kept and the builder decodes, checks
    and drops them one by one.
    """

    def __init__(self, text: str, starts: array[int]) -> None:
        self._text = text
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        decode, text = _DECODER.raw_decode, self._text
        for start in self._starts:
            yield decode(text, start)[0]


@dataclass(frozen=True)
class Update:
    """A parsed (not yet applied) update payload."""

    kind: Literal["snapshot", "delta"]
    list_id: str
    version: int
    base_version: int | None
    created_at: str
    entries: Sequence[Mapping[str, Any]] | Records  # snapshot entries, or delta additions
    remove: Sequence[Mapping[str, Any]] | Records


# --- parsing (the car) -----------------------------------------------------------------------------


def decode_payload(payload: bytes) -> Any:
    """gunzip if gzip-compressed (bounded size), then parse JSON."""
    return load_json(_inflate(payload))


def _inflate(payload: bytes) -> bytes:
    """The payload's JSON bytes: gunzipped if gzip-compressed; UpdateError beyond MAX_UPDATE_BYTES."""
    if len(payload) > MAX_UPDATE_BYTES:
        raise UpdateError(f"payload larger than {MAX_UPDATE_BYTES} bytes")
    if payload[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(payload)) as f:
                payload = f.read(MAX_UPDATE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise UpdateError(f"payload is not valid gzip ({exc})") from None
    if len(payload) > MAX_UPDATE_BYTES:
        raise UpdateError(f"payload larger than {MAX_UPDATE_BYTES} bytes once decompressed")
    return payload


def parse_update(payload: bytes) -> Update:
    """Check the update's header fields; entries are validated when the list is built."""
    return _check(decode_payload(payload))


def payload_text(payload: bytes) -> str:
    """The payload as JSON text (gunzipped, decoded as `json.loads` decodes bytes), for `read_update`.

    The caller can then drop the payload's bytes before the update is read.
    """
    data = _inflate(payload)
    try:
        return data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError as exc:
        raise UpdateError(f"payload is not valid JSON ({exc})") from None


def read_update(text: str) -> Update:
    """`parse_update` for `payload_text(payload)`, with the same result and errors, but its entry arrays
    are `Records`: checked as JSON here and decoded one record at a time when the list is built.

    Anything the scan does not expect (invalid JSON, a repeated field) is parsed by `json` as a whole
    instead, so its errors and meaning are exactly those of `parse_update`.
    """
    try:
        obj = _scan(text)
    except (ValueError, RecursionError):
        try:
            obj = _DECODER.decode(text)
        except RecursionError:
            raise UpdateError("payload is nested too deeply to be a watchlist update") from None
        except ValueError as exc:
            raise UpdateError(f"payload is not valid JSON ({exc})") from None
    return _check(obj)


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder skips it
_STREAMED = frozenset({"entries", "add", "remove"})


def _skip(text: str, i: int) -> int:
    """The index of the first character at or after `i` that is not whitespace."""
    m = _WS.match(text, i)
    return m.end() if m else i


def _scan(text: str) -> dict[str, Any]:
    """The top-level object with its entry arrays as `Records`; ValueError for anything unexpected."""
    decode = _DECODER.raw_decode
    i = _skip(text, 0)
    if text[i:i + 1] != "{":
        raise ValueError("not an object")
    i = _skip(text, i + 1)
    obj: dict[str, Any] = {}
    if text[i:i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i:i + 1] != '"':
                raise ValueError("expected a field name")
            key, i = decode(text, i)
            i = _skip(text, i)
            if text[i:i + 1] != ":" or key in obj:
                raise ValueError("expected ':' or a new field name")
            i = _skip(text, i + 1)
            if key in _STREAMED and text[i:i + 1] == "[":
                obj[key], i = _scan_array(text, i)
            else:
                obj[key], i = decode(text, i)
            i = _skip(text, i)
            if text[i:i + 1] == ",":
                i = _skip(text, i + 1)
            elif text[i:i + 1] == "}":
                i += 1
                break
            else:
                raise ValueError("expected ',' or '}'")
    if _skip(text, i) != len(text):
        raise ValueError("extra data")
    return obj


def _scan_array(text: str, i: int) -> tuple[Records, int]:
    """The array starting at text[i] ('['): each element is decoded to check it, then dropped."""
    decode = _DECODER.raw_decode
    starts = array("q")
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        return Records(text, starts), i + 1
    while True:
        starts.append(i)
        _, i = decode(text, i)
        i = _skip(text, i)
        if text[i:i + 1] == "]":
            return Records(text, starts), i + 1
        if text[i:i + 1] != ",":
            raise ValueError("expected ',' or ']'")
        i = _skip(text, i + 1)


def _check(obj: Any) -> Update:
    """The header checks of `parse_update` on a decoded payload."""
    if not isinstance(obj, dict):
        raise UpdateError(f"payload must be a JSON object, got {type(obj).__name__}")
    if obj.get("format") != UPDATE_FORMAT:
        raise UpdateError(f"format {obj.get('format')!r}, expected {UPDATE_FORMAT!r}")
    kind = obj.get("type", "snapshot")
    if kind not in ("snapshot", "delta"):
        raise UpdateError(f"type {kind!r}, expected 'snapshot' or 'delta'")
    allowed = {"format", "type", "list_id", "fleet", "version", "base_version", "created_at", "entries",
               "add", "remove", "comment"}
    unknown = set(obj) - allowed
    if unknown:
        raise UpdateError(f"unknown field(s) {sorted(unknown)}")
    version = check_version(obj.get("version"))
    list_id = check_list_id(obj.get("list_id", obj.get("fleet", "")))
    if "comment" in obj:
        try:
            check_text(obj["comment"], "comment")
        except WatchlistError as exc:
            raise UpdateError(str(exc)) from None
    created = obj.get("created_at")
    try:
        if parse_time(created, "created_at") is None:
            raise WatchlistError("created_at: missing")
    except WatchlistError as exc:
        raise UpdateError(str(exc)) from None
    base = obj.get("base_version")
    if kind == "delta":
        base = check_version(base, "delta base_version", lowest=0)
        if base >= version:
            raise UpdateError(f"delta base_version {base} must be below its version {version}")
        if "entries" in obj:
            raise UpdateError("a delta carries 'add' and 'remove', not 'entries'")
        entries, remove = obj.get("add", []), obj.get("remove", [])
    else:
        if "add" in obj or "remove" in obj:
            raise UpdateError("a snapshot carries 'entries', not 'add'/'remove'")
        if "entries" not in obj:
            raise UpdateError("snapshot has no 'entries'")
        entries, remove = obj["entries"], []
    for name, value in (("entries" if kind == "snapshot" else "add", entries), ("remove", remove)):
        if not isinstance(value, list | Records):
            raise UpdateError(f"{name} must be a list, got {type(value).__name__}")
    return Update(kind, list_id, version, base, str(created), entries, remove)


# --- encoding (HQ) --------------------------------------------------------------------------------


def _header(kind: str, version: int, list_id: str, created_at: datetime | None) -> dict[str, Any]:
    check_version(version)
    check_list_id(list_id)
    return {"format": UPDATE_FORMAT, "type": kind, "list_id": list_id, "version": version,
            "created_at": format_time(created_at or datetime.now(UTC))}


def _encode(obj: Mapping[str, Any], compress: bool) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return gzip.compress(data, compresslevel=6, mtime=0) if compress else data


def snapshot_payload(records: Sequence[Mapping[str, Any]], version: int, list_id: str = "",
                     created_at: datetime | None = None, compress: bool = False) -> bytes:
    """A full-list update payload (the bytes HQ signs)."""
    obj = _header("snapshot", version, list_id, created_at)
    obj["entries"] = list(records)
    return _encode(obj, compress)


def delta_payload(add: Sequence[Mapping[str, Any]], remove: Sequence[Mapping[str, Any]], version: int,
                  base_version: int, list_id: str = "", created_at: datetime | None = None,
                  compress: bool = False) -> bytes:
    """A delta update payload: entries to add (or replace) and keys (plate, list, region) to remove."""
    obj = _header("delta", version, list_id, created_at)
    obj["base_version"] = check_version(base_version, "base_version", lowest=0)
    obj["add"] = list(add)
    obj["remove"] = list(remove)
    return _encode(obj, compress)


def default_version(now: datetime | None = None) -> int:
    """A version number that increases with time: UTC seconds since 2020-01-01."""
    now = now or datetime.now(UTC)
    return int((now - datetime(2020, 1, 1, tzinfo=UTC)).total_seconds())
