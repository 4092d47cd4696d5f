"""Watchlist entries as HQ issues them: plate and field rules, times, and the column storage a list is kept in.

The index (`index.py`) and the builder (`builder.py`) share these; import and update formats use the
field rules to name the field and the entry of every bad value.
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
FIELD_SET = frozenset(ENTRY_FIELDS)
CORE_FIELDS = frozenset(ENTRY_FIELDS[:7])
NAN = float("nan")


class WatchlistError(ValueError):
    """An entry or option that cannot be accepted; the message names the line/field and value."""


def normalise_plate(text: str) -> str:
    """Upper-case and strip spaces, dashes and dots; the result may still be invalid."""
    return text.translate(STRIP).upper()


def parse_plate(text: str, where: str, allow_wildcards: bool = True) -> str:
    """Normalise a listed plate and check it is 1..10 characters of A-Z0-9 (or `*`/`?`)."""
    plate = normalise_plate(text)
    ok = PATTERN_RE.fullmatch(plate) if allow_wildcards else PLATE_RE.fullmatch(plate)
    if not ok:
        allowed = "A-Z, 0-9" + (", * and ?" if allow_wildcards else "")
        raise WatchlistError(
            f"{where}: plate {text!r} is not a valid plate (1-{MAX_PLATE_LEN} characters of {allowed} "
            "after removing spaces, dashes and dots)"
        )
    return plate


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
    if not isinstance(record, Mapping) or "plate" not in record:
        raise WatchlistError(f"{where}: a removal needs at least a 'plate' (and 'list', 'region')")
    plate = parse_plate(str(record["plate"]), f"{where}, field 'plate'")
    region = record.get("region") or ""
    return (plate, str(record.get("list") or "stolen_vehicle"), str(region).upper())


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
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", value):
        raise WatchlistError(f"{where}: list name {value!r} must be 1-32 of a-z, 0-9, _")
    return value


def norm_region(region: str | None) -> str | None:
    return region.strip().upper() or None if region else None
