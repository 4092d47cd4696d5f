"""Collecting and validating entries into columns, then indexing them into a `Watchlist`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from picar.types import WatchEntry
from picar.watchlist.entries import (
    CORE_FIELDS,
    ENTRY_FIELDS,
    FIELD_SET,
    NAN,
    PATTERN_RE,
    STRIP,
    Columns,
    Row,
    WatchlistError,
    check_list,
    check_priority,
    norm_region,
    parse_plate,
    parse_time,
    to_ts,
)
from picar.watchlist.matching import MatchOptions

if TYPE_CHECKING:
    from picar.watchlist.index import Watchlist

class WatchlistBuilder:
    """Collects entries into columns, validating each; `build()` indexes them into a Watchlist.

    Columns are lists of shared small objects (small ints, bools, one NaN) while collecting, so a
    million entries never become a million objects beyond their plate strings.
    """

    def __init__(self, options: MatchOptions | None = None) -> None:
        self.options = options or MatchOptions()
        self._plates: list[str] = []
        self._list_idx: list[int] = []
        self._lists: dict[str, int] = {}
        self._region_idx: list[int] = []
        self._regions: dict[str | None, int] = {None: 0}
        self._region_names: dict[str, str | None] = {}
        self._prio: list[int] = []
        self._covert: list[bool] = []
        self._eff: list[float] = []  # NaN (the shared NAN object) when unset
        self._exp: list[float] = []
        self._extras: dict[int, tuple[str, str, str, str]] = {}

    def __len__(self) -> int:
        return len(self._plates)

    def add_entry(self, e: WatchEntry, where: str) -> None:
        """Add a WatchEntry (its plate is normalised and checked)."""
        plate = parse_plate(e.plate, where)
        check_priority(e.priority, where)
        extras = (e.description, e.reason, e.notes, e.source)
        self.add_row((plate, check_list(e.list, where), norm_region(e.region), e.priority, e.covert,
                      to_ts(e.effective), to_ts(e.expires), extras if any(extras) else None))

    def add_record(self, rec: Mapping[str, Any], where: str) -> None:
        """Add a JSON record (the snapshot/delta entry format); errors name `where` and the field."""
        self.add_row(self.parse_record(rec, where))

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
        if not PATTERN_RE.fullmatch(plate):
            parse_plate(raw, f"{where}, field 'plate'")
        list_name = rec.get("list", "stolen_vehicle")
        if list_name not in self._lists:
            check_list(list_name, f"{where}, field 'list'")
        region = rec.get("region")
        if region is not None:
            if region.__class__ is not str:
                raise WatchlistError(f"{where}, field 'region': {region!r} is not a string")
            if region not in self._region_names:
                self._region_names[region] = norm_region(region)
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
        if len(rec) > 2 and not rec.keys() <= CORE_FIELDS:
            texts = (rec.get("description", ""), rec.get("reason", ""), rec.get("notes", ""),
                     rec.get("source", ""))
            for name, value in zip(("description", "reason", "notes", "source"), texts, strict=True):
                if value.__class__ is not str:
                    raise WatchlistError(f"{where}, field '{name}': {value!r} is not a string")
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

    def build(self, version: int = 0, list_id: str = "") -> Watchlist:
        """Index the collected entries. Raises WatchlistError if wildcard limits are exceeded."""
        cols = Columns(
            plates=self._plates,
            lists=tuple(self._lists),
            list_idx=np.array(self._list_idx, dtype=np.uint16),
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

