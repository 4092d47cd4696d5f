"""The watchlist language: what an entry and a list may hold, and the column storage a list is kept in.

Every rule is written here once: the importer (`io.py`), the signer (`picar hq watchlist sign`) and the
car (`sync.py`) all validate through `WatchlistBuilder` (`builder.py`), which applies these, so a list
HQ can import and sign is exactly a list the car accepts. docs/watchlist.md states the same limits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from picar.isotime import utc_iso

MAX_PLATE_LEN = 10
DEFAULT_CONFUSABLES: tuple[str, ...] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
STRIP = str.maketrans("", "", " -.\t")
PLATE_RE = re.compile(rf"[A-Z0-9]{{1,{MAX_PLATE_LEN}}}")
PATTERN_RE = re.compile(rf"[A-Z0-9*?]{{1,{MAX_PLATE_LEN}}}")
ENTRY_FIELDS = (
    "plate", "list", "region", "priority", "covert", "effective", "expires",
    "description", "reason", "notes", "source",
)
TEXT_FIELDS = ENTRY_FIELDS[7:]
FIELD_SET = frozenset(ENTRY_FIELDS)
CORE_FIELDS = frozenset(ENTRY_FIELDS[:7])
NAN = float("nan")

# The limits of the language (docs/watchlist.md, "Limits"); each is checked in this module or by
# `WatchlistBuilder.check`, nowhere else.
DEFAULT_LIST = "stolen_vehicle"
LIST_RE = re.compile(r"[a-z0-9_]{1,32}")
MAX_LISTS = 256  # distinct list names in one list
REGION_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,5}")  # "CA", "NV", "US-CA", "GB-ENG" (after upper-casing)
MAX_REGIONS = 1024  # distinct regions in one list
MAX_TEXT_LEN = 500  # description, reason, notes, source: characters, no control characters
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MIN_LITERALS = 3  # a wildcard pattern needs at least this many characters other than * and ?
MAX_STARS = 2  # and at most this many '*'
MAX_WILDCARDS = 1000  # wildcard patterns in one list


class WatchlistError(ValueError):
    """An entry or option that cannot be accepted; the message names the line/field and value."""


def normalise_plate(text: str) -> str:
    """Upper-case and strip spaces, dashes and dots; the result may still be invalid."""
    return text.translate(STRIP).upper()


def parse_plate(text: str, where: str, allow_wildcards: bool = True) -> str:
    """Normalise a listed plate: 1..10 characters of A-Z0-9, or a wildcard pattern of the allowed shape."""
    plate = normalise_plate(text)
    ok = PATTERN_RE.fullmatch(plate) if allow_wildcards else PLATE_RE.fullmatch(plate)
    if not ok:
        allowed = "A-Z, 0-9" + (", * and ?" if allow_wildcards else "")
        raise WatchlistError(
            f"{where}: plate {text!r} is not a valid plate (1-{MAX_PLATE_LEN} characters of {allowed} "
            "after removing spaces, dashes and dots)"
        )
    if allow_wildcards and not PLATE_RE.fullmatch(plate):
        literals = sum(ch not in "*?" for ch in plate)
        if literals < MIN_LITERALS:
            raise WatchlistError(f"{where}: wildcard plate {text!r} needs at least {MIN_LITERALS} literal "
                                 "characters besides * and ?")
        if plate.count("*") > MAX_STARS:
            raise WatchlistError(f"{where}: wildcard plate {text!r} has at most {MAX_STARS} '*' allowed")
    return plate


def is_pattern(plate: str) -> bool:
    """True for a wildcard pattern (a valid plate holding * or ?)."""
    return "*" in plate or "?" in plate


def parse_time(value: object, where: str, end_of_day: bool = False) -> datetime | None:
    """Parse an ISO 8601 date or date-time; naive times are UTC; a bare expiry date lasts all day."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise WatchlistError(f"{where}: {value!r} is not a date (use ISO 8601, e.g. 2026-12-31)")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WatchlistError(
            f"{where}: {value!r} is not a date (use ISO 8601, e.g. 2026-12-31 or 2026-12-31T23:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    if value is None:
        return None
    return utc_iso(value)




def from_ts(ts: float) -> datetime | None:
    return None if ts != ts else datetime.fromtimestamp(ts, UTC)


def to_ts(value: datetime | None) -> float:
    return float("nan") if value is None else value.timestamp()


Row = tuple[str, str, str | None, int, bool, float, float, tuple[str, str, str, str] | None]


def row_key(r: Row) -> tuple[str, str, str]:
    return (r[0], r[1], r[2] or "")


def key_of(record: Mapping[str, Any], where: str) -> tuple[str, str, str]:
    """The identity of an entry: (plate, list, region); used by delta removals."""
    if not isinstance(record, Mapping) or not isinstance(record.get("plate"), str):
        raise WatchlistError(f"{where}: a removal needs at least a 'plate' (and 'list', 'region')")
    unknown = sorted(set(record) - {"plate", "list", "region"})
    if unknown:
        raise WatchlistError(f"{where}: unknown field(s) {unknown} in a removal; allowed plate, list, region")
    plate = parse_plate(record["plate"], f"{where}, field 'plate'")
    list_name = check_list(record.get("list", DEFAULT_LIST), f"{where}, field 'list'")
    return (plate, list_name, parse_region(record.get("region"), f"{where}, field 'region'") or "")


@dataclass
class Columns:
    """Column storage; `plates` stays a list of str for cheap access, indexed via a numpy copy."""

    plates: list[str]
    lists: tuple[str, ...]
    list_idx: np.ndarray
    regions: tuple[str | None, ...]
    region_idx: np.ndarray
    priority: np.ndarray
    covert: np.ndarray
    effective: np.ndarray
    expires: np.ndarray
    extras: dict[int, tuple[str, str, str, str]]

    def plates_array(self) -> np.ndarray:
        return np.array(self.plates, dtype=f"S{MAX_PLATE_LEN}")

    def row(self, i: int) -> Row:
        return (self.plates[i], self.lists[self.list_idx[i]], self.regions[self.region_idx[i]],
                int(self.priority[i]), bool(self.covert[i]), float(self.effective[i]),
                float(self.expires[i]), self.extras.get(i))

    def record(self, i: int) -> dict[str, Any]:
        plate, list_name, region, prio, covert, eff, exp, extras = self.row(i)
        rec: dict[str, Any] = {"plate": plate, "list": list_name}
        if region:
            rec["region"] = region
        if prio != 2:
            rec["priority"] = prio
        if covert:
            rec["covert"] = True
        if eff == eff:
            rec["effective"] = format_time(from_ts(eff))
        if exp == exp:
            rec["expires"] = format_time(from_ts(exp))
        if extras:
            for name, value in zip(("description", "reason", "notes", "source"), extras, strict=True):
                if value:
                    rec[name] = value
        return rec


def check_priority(value: object, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9:
        raise WatchlistError(f"{where}: priority {value!r} must be an integer 1 (highest) .. 9")


def check_list(value: object, where: str) -> str:
    if not isinstance(value, str) or not LIST_RE.fullmatch(value):
        raise WatchlistError(f"{where}: list name {value!r} must be 1-32 of a-z, 0-9, _")
    return value


def norm_region(region: str | None) -> str | None:
    return region.strip().upper() or None if region else None


def parse_region(value: object, where: str) -> str | None:
    """A region code, upper-cased: 1-6 of A-Z, 0-9 and '-' (not first); None or "" means any region."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise WatchlistError(f"{where}: {value!r} is not a string")
    region = norm_region(value)
    if region is not None and not REGION_RE.fullmatch(region):
        raise WatchlistError(f"{where}: region {value!r} must be 1-6 of A-Z, 0-9 and '-' (e.g. CA, US-CA), "
                             "or empty for any region")
    return region


def check_text(value: object, where: str) -> str:
    """A free-text field: a string of at most MAX_TEXT_LEN characters without control characters."""
    if not isinstance(value, str):
        raise WatchlistError(f"{where}: {value!r} is not a string")
    if len(value) > MAX_TEXT_LEN:
        raise WatchlistError(f"{where}: {len(value)} characters; at most {MAX_TEXT_LEN} are allowed")
    bad = CONTROL_RE.search(value)
    if bad:
        raise WatchlistError(f"{where}: control character {bad.group()!r} at position {bad.start() + 1}; "
                             "text fields are one line of printable characters")
    return value


def duplicate_error(later: str, first: str, key: tuple[str, str, str]) -> WatchlistError:
    """The duplicates rule: a list holds each identity (plate, list, region) once."""
    plate, list_name, region = key
    return WatchlistError(
        f"{later}: same plate, list and region as {first} ({plate}, {list_name}, {region or 'any region'}); "
        "a list holds each (plate, list, region) once: merge the two entries"
    )
