"""Collecting and validating entries into columns, then indexing them into a `Watchlist`."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from picar.types import WatchEntry
from picar.watchlist.entries import (
    CONTROL_RE,
    CORE_FIELDS,
    DEFAULT_LIST,
    ENTRY_FIELDS,
    FIELD_SET,
    MAX_LISTS,
    MAX_PLATE_LEN,
    MAX_REGIONS,
    MAX_TEXT_LEN,
    MAX_WILDCARDS,
    NAN,
    PLATE_RE,
    STRIP,
    TEXT_FIELDS,
    Columns,
    Row,
    WatchlistError,
    check_list,
    check_priority,
    check_text,
    duplicate_error,
    parse_plate,
    parse_region,
    parse_time,
    to_ts,
)
from picar.watchlist.matching import MAX_ENTRIES, MatchOptions

if TYPE_CHECKING:
    from picar.watchlist.index import Watchlist

Namer = Callable[[int], str]


def entry_names(prefix: str, offset: int = 0) -> Namer:
    """Names rows as the entries of a payload array: row `offset + i` is `prefix[i]`."""
    return lambda row: f"{prefix}[{row - offset}]"


class WatchlistBuilder:
    """Collects entries into columns, validating each; `build()` indexes them into a Watchlist.

    Columns are typed arrays (`array.array`) while collecting, so a million entries never become a
    million objects beyond their plate strings, and cost 22 bytes a row instead of 48.
    """

    def __init__(self, options: MatchOptions | None = None) -> None:
        self.options = options or MatchOptions()
        self._plates: list[str] = []
        self._list_idx = array("I")  # 32 bits: too many names are reported by `check`, not an overflow
        self._lists: dict[str, int] = {}
        self._region_idx = array("I")
        self._regions: dict[str | None, int] = {None: 0}
        self._region_names: dict[str, str | None] = {}
        self._prio = array("b")
        self._covert = array("b")
        self._eff = array("d")  # NaN when unset
        self._exp = array("d")
        self._extras: dict[int, tuple[str, str, str, str]] = {}

    def __len__(self) -> int:
        return len(self._plates)

    def plate(self, row: int) -> str:
        """The plate collected at `row` (for naming a row in an error)."""
        return self._plates[row]

    def add_entry(self, e: WatchEntry, where: str) -> None:
        """Add a WatchEntry (its plate is normalised and checked)."""
        plate = parse_plate(e.plate, where)
        check_priority(e.priority, where)
        extras = (e.description, e.reason, e.notes, e.source)
        for name, value in zip(TEXT_FIELDS, extras, strict=True):
            check_text(value, f"{where}, field '{name}'")
        self.add_row((plate, check_list(e.list, where), parse_region(e.region, where), e.priority, e.covert,
                      to_ts(e.effective), to_ts(e.expires), extras if any(extras) else None))

    def add_record(self, rec: Mapping[str, Any], where: str) -> None:
        """Add a JSON record (the snapshot/delta entry format); errors name `where` and the field."""
        self.add_row(self.parse_record(rec, where))

    def add_records(self, records: Iterable[Mapping[str, Any]], prefix: str) -> Namer:
        """Add a payload's entry array; returns the namer (`prefix[i]`) to pass to `check`/`build`."""
        offset = len(self)
        for i, rec in enumerate(records):
            self.add_record(rec, f"{prefix}[{i}]")
        return entry_names(prefix, offset)

    def parse_record(self, rec: Mapping[str, Any], where: str) -> Row:
        """Validate one JSON entry record into a row; raises WatchlistError naming the field."""
        if rec.__class__ is not dict and not isinstance(rec, Mapping):
            raise WatchlistError(f"{where}: an entry must be a JSON object, got {type(rec).__name__}")
        if not rec.keys() <= FIELD_SET:
            unknown = sorted(set(rec) - FIELD_SET)
            raise WatchlistError(f"{where}: unknown field(s) {unknown}; allowed {list(ENTRY_FIELDS)}")
        raw = rec.get("plate")
        if raw.__class__ is not str:
            raise WatchlistError(f"{where}, field 'plate': missing or not a string ({raw!r})")
        plate = raw.translate(STRIP).upper()
        if not PLATE_RE.fullmatch(plate):  # invalid, or a wildcard pattern whose shape is checked
            plate = parse_plate(raw, f"{where}, field 'plate'")
        list_name = rec.get("list", DEFAULT_LIST)
        if list_name not in self._lists:
            check_list(list_name, f"{where}, field 'list'")
        region = rec.get("region")
        if region is not None:
            if region.__class__ is not str or region not in self._region_names:
                self._region_names[region] = parse_region(region, f"{where}, field 'region'")
            region = self._region_names[region]
        prio = rec.get("priority", 2)
        if prio.__class__ is not int or not 1 <= prio <= 9:
            check_priority(prio, f"{where}, field 'priority'")
        covert = rec.get("covert", False)
        if covert.__class__ is not bool:
            raise WatchlistError(f"{where}, field 'covert': {covert!r} is not true/false")
        eff = rec.get("effective")
        exp = rec.get("expires")
        eff_ts = NAN if eff is None else to_ts(parse_time(eff, f"{where}, field 'effective'"))
        exp_ts = NAN if exp is None else to_ts(parse_time(exp, f"{where}, field 'expires'", end_of_day=True))
        extras = None
        if not rec.keys() <= CORE_FIELDS:
            texts = (rec.get("description", ""), rec.get("reason", ""), rec.get("notes", ""),
                     rec.get("source", ""))
            for name, value in zip(TEXT_FIELDS, texts, strict=True):
                if value.__class__ is not str or len(value) > MAX_TEXT_LEN or CONTROL_RE.search(value):
                    check_text(value, f"{where}, field '{name}'")  # raises, naming the rule broken
            if any(texts):
                extras = texts
        return (plate, list_name, region, prio, covert, eff_ts, exp_ts, extras)

    def add_row(self, r: Row) -> None:
        """Append an already validated row."""
        plate, list_name, region, prio, covert, eff, exp, extras = r
        if extras:
            self._extras[len(self._plates)] = extras
        self._plates.append(plate)
        li = self._lists.get(list_name)
        if li is None:
            li = self._lists[list_name] = len(self._lists)
        self._list_idx.append(li)
        ri = self._regions.get(region)
        if ri is None:
            ri = self._regions[region] = len(self._regions)
        self._region_idx.append(ri)
        self._prio.append(prio)
        self._covert.append(covert)
        self._eff.append(eff)
        self._exp.append(exp)

    def check(self, where: Namer | None = None) -> None:
        """The rules on a whole list: counts of entries, lists, regions and wildcard patterns, and no
        two entries with the same (plate, list, region). `where(row)` names a row in the error."""
        name = where or entry_names("entries")
        n = len(self._plates)
        if n > MAX_ENTRIES:
            raise WatchlistError(f"{name(MAX_ENTRIES)}: a list holds at most {MAX_ENTRIES} entries")
        if len(self._lists) > MAX_LISTS:
            row = self._list_idx.index(MAX_LISTS)
            raise WatchlistError(f"{name(row)}, field 'list': {tuple(self._lists)[MAX_LISTS]!r} is list name "
                                 f"number {MAX_LISTS + 1}; a list may hold at most {MAX_LISTS} distinct list names")
        if len(self._regions) - 1 > MAX_REGIONS:  # index 0 is "any region"
            row = self._region_idx.index(MAX_REGIONS + 1)
            raise WatchlistError(f"{name(row)}, field 'region': region number {MAX_REGIONS + 1}; a list "
                                 f"may hold at most {MAX_REGIONS} distinct regions")
        if not n:
            return
        raw = np.array(self._plates, dtype=f"S{MAX_PLATE_LEN}").view(np.uint8).reshape(n, MAX_PLATE_LEN)
        wild = np.nonzero(((raw == ord("*")) | (raw == ord("?"))).any(axis=1))[0]
        if len(wild) > MAX_WILDCARDS:
            raise WatchlistError(f"{name(int(wild[MAX_WILDCARDS]))}: wildcard pattern number {MAX_WILDCARDS + 1}; "
                                 f"a list may hold at most {MAX_WILDCARDS} wildcard entries")
        # Identity (plate, list, region) as two uint64 words per row; equal neighbours after a sort repeat.
        key = np.zeros((n, 16), dtype=np.uint8)
        key[:, :MAX_PLATE_LEN] = raw
        key[:, 10:12] = np.array(self._list_idx, dtype=np.uint16).view(np.uint8).reshape(n, 2)
        key[:, 12:14] = np.array(self._region_idx, dtype=np.uint16).view(np.uint8).reshape(n, 2)
        words = key.view(np.uint64)
        order = np.lexsort((words[:, 1], words[:, 0]))  # stable: equal rows stay in row order
        ordered = words[order]
        same = np.nonzero((ordered[1:] == ordered[:-1]).all(axis=1))[0]
        if len(same):
            k = int(same[np.argmin(order[same + 1])])  # the earliest repeat
            first, later = int(order[k]), int(order[k + 1])
            lists, regions = tuple(self._lists), tuple(self._regions)
            raise duplicate_error(name(later), name(first), (self._plates[first], lists[self._list_idx[first]],
                                                             regions[self._region_idx[first]] or ""))

    def build(self, version: int = 0, list_id: str = "", where: Namer | None = None) -> Watchlist:
        """Check the whole list (`check`) and index it; `where(row)` names a row in an error."""
        self.check(where)
        cols = Columns(
            plates=self._plates,
            lists=tuple(self._lists),
            list_idx=np.array(self._list_idx, dtype=np.uint16),  # `check` kept them below 2**16
            regions=tuple(self._regions),
            region_idx=np.array(self._region_idx, dtype=np.uint16),
            priority=np.array(self._prio, dtype=np.int8),
            covert=np.array(self._covert, dtype=bool),
            effective=np.array(self._eff, dtype=np.float64),
            expires=np.array(self._exp, dtype=np.float64),
            extras=self._extras,
        )
        from picar.watchlist.index import Watchlist  # the index builds itself from builders too

        return Watchlist(cols, self.options, version=version, list_id=list_id)

