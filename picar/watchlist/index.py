"""The in-car watchlist (hotlist): a compact column store of entries (`entries.py`, built by `builder.py`)
and a fast fuzzy matcher (`matching.py` says how a read matches a listed plate).

A list of a million entries is kept as numpy columns, not a million objects; `WatchEntry` objects
are built only for entries that hit. Exact and OCR-confusable matches are one lookup of the read's
canonical form (each confusable class folded onto one character) in a sorted hash array. Edit
distance 1 uses symmetric deletion: every entry's canonical form with one character deleted is
indexed once at load, so a read costs a handful of `searchsorted` calls whatever the list size.
Every candidate found through a hash is verified against the real plate text before it is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from picar.types import Match, WatchEntry
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import (
    MAX_PLATE_LEN,
    PLATE_RE,
    Columns,
    WatchlistError,
    from_ts,
    key_of,
    normalise_plate,
    row_key,
)
from picar.watchlist.matching import (
    HASH_BITS,
    MAX_ENTRIES,
    ROW_BITS,
    Alphabet,
    MatchOptions,
    align,
    column_hashes,
    keep_best,
)

_BLOCK = 32


@dataclass(frozen=True)
class _Pattern:
    row: int
    regex: re.Pattern[str]
    literal_groups: tuple[tuple[int, str], ...]  # (group number, listed literal)


class Watchlist:
    """An immutable, indexed watchlist: build with `WatchlistBuilder`, `from_entries` or `from_records`."""

    def __init__(self, cols: Columns, options: MatchOptions, version: int = 0, list_id: str = "") -> None:
        self.options = options
        self.version = version
        self.list_id = list_id
        self._c = cols
        self._abc = Alphabet(options.confusables)
        n = len(cols.plates)
        if n > MAX_ENTRIES:
            raise WatchlistError(f"{n} entries; at most {MAX_ENTRIES} are supported")
        raw = cols.plates_array().view(np.uint8).reshape(n, MAX_PLATE_LEN)
        wild = ((raw == ord("*")) | (raw == ord("?"))).any(axis=1)
        self._wild_rows = np.nonzero(wild)[0]  # their number and shapes are checked by the builder
        self._build_index(raw, ~wild)
        del raw
        self._build_patterns()
        self._fuzzy = any(options.edit_for(name) > 0 for name in cols.lists) if n else False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Iterable[WatchEntry], options: MatchOptions | None = None,
                     version: int = 0, list_id: str = "") -> Watchlist:
        """Build from WatchEntry objects (plates are normalised and checked)."""
        builder = WatchlistBuilder(options)
        for i, entry in enumerate(entries):
            builder.add_entry(entry, where=f"entry {i + 1}")
        return builder.build(version=version, list_id=list_id, where=lambda row: f"entry {row + 1}")

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], options: MatchOptions | None = None,
                     version: int = 0, list_id: str = "") -> Watchlist:
        """Build from JSON entry records (as in snapshots and as `watchlist_io.read_csv` returns)."""
        builder = WatchlistBuilder(options)
        names = builder.add_records(records, "entries")
        return builder.build(version=version, list_id=list_id, where=names)

    def _build_index(self, raw: np.ndarray, plain: np.ndarray) -> None:
        """Sorted uint64 keys: the top 40 bits of a canonical-form hash, the low 24 bits the row.

        Packing the row into the key lets a plain `np.sort` (much faster than argsort) build the
        index and halves its memory; 40 hash bits leave ~1e-5 false candidates per lookup, and every
        candidate is verified against the real plate anyway.
        """
        rows = np.nonzero(plain)[0].astype(np.uint64)
        codes = self._abc.lut[raw[rows]]
        lengths = np.count_nonzero(codes, axis=1)
        full, dels = column_hashes(codes)
        full &= HASH_BITS  # in place: a million-entry list is built within the daemon's memory limit
        full |= rows
        full.sort()
        self._full_keys = _KeyIndex(full)
        fuzzy_ok = lengths >= self.options.min_fuzzy_length
        counts = [int(np.count_nonzero((lengths > k) & fuzzy_ok)) for k in range(codes.shape[1])]
        dk = np.empty(sum(counts), dtype=np.uint64)
        at = 0
        for k, (h, count) in enumerate(zip(dels, counts, strict=True)):
            keep = (lengths > k) & fuzzy_ok
            part = dk[at:at + count]
            np.compress(keep, h, out=part)
            del h
            part &= HASH_BITS
            part |= rows[keep]
            at += count
        del codes, dels
        dk.sort()
        self._del_keys = _KeyIndex(dk)

    def _build_patterns(self) -> None:
        """Compile every wildcard entry once, on the canonical alphabet, grouped by read length."""
        opts = self.options
        by_len: dict[int, list[_Pattern]] = {}
        for row in self._wild_rows.tolist():
            pattern = self._c.plates[row]
            stars = pattern.count("*")
            parts, groups, g = [], [], 0
            for ch in pattern:
                if ch == "?":
                    parts.append(".")
                elif ch == "*":
                    parts.append(f".{{0,{opts.wildcard_run}}}")
                else:
                    g += 1
                    parts.append(f"({re.escape(ch.translate(self._abc.canon))})")
                    groups.append((g, ch))
            compiled = _Pattern(row, re.compile("".join(parts)), tuple(groups))
            shortest = len(pattern) - stars
            for length in range(shortest, shortest + stars * opts.wildcard_run + 1):
                by_len.setdefault(length, []).append(compiled)
        self._patterns = by_len
        # One alternation per length as a cheap "does anything match" gate before the per-pattern loop.
        self._pattern_gate = {
            length: re.compile("|".join(f"(?:{p.regex.pattern})" for p in pats))
            for length, pats in by_len.items()
        }

    # -- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._c.plates)

    def match(self, candidates: Sequence[tuple[str, float]], region: str | None = None,
              at: datetime | None = None) -> list[tuple[WatchEntry, Match]]:
        """Match all OCR candidates of one read (best first); best match per entry, priority order.

        An entry matches at most once, through its best (kind, fewest differences, highest
        confidence) candidate. Entries not in force at `at` (default now) are ignored, and so are
        entries whose region differs from `region` when both are known.
        """
        reads: list[tuple[str, float]] = []
        seen: set[str] = set()
        for text, conf in candidates:
            norm = normalise_plate(text)
            if norm and norm not in seen and PLATE_RE.fullmatch(norm):
                seen.add(norm)
                reads.append((norm, conf))
        if not reads or not len(self):
            return []
        queries: list[int] = []
        owners: list[int] = []
        for i, (text, _conf) in enumerate(reads):
            queries.append(self._abc.full_hash(text))
            owners.append(i)
        n_full = len(queries)
        if self._fuzzy:
            for i, (text, _conf) in enumerate(reads):
                if len(text) >= self.options.min_fuzzy_length:
                    dels = self._abc.deletion_hashes(text)
                    queries.extend(dels)
                    owners.extend([i] * len(dels))
        uq, inv = np.unique(np.array(queries, dtype=np.uint64) & HASH_BITS, return_inverse=True)
        same: dict[int, set[int]] = {}  # row -> candidates with the same canonical form
        near: dict[int, set[int]] = {}  # row -> candidates maybe one edit away
        for j, row in self._full_keys.lookup(uq, inv):
            (same if j < n_full else near).setdefault(row, set()).add(owners[j])
        if len(queries) > n_full:
            for j, row in self._del_keys.lookup(uq, inv):
                near.setdefault(row, set()).add(owners[j])
        best: dict[int, tuple[tuple[int, int, int, float], Match]] = {}
        # Candidates are tried best first, so the first look-alike match ends the search.
        for row, cands in same.items():
            for i in sorted(cands):
                text, conf = reads[i]
                m = self._verify(text, row)
                if m is not None:
                    keep_best(best, row, m, conf, i)
                    break
        for row, cands in near.items():
            if row in best:
                continue  # an exact or confusable match outranks any edit match
            for i in sorted(cands):
                text, conf = reads[i]
                m = self._verify(text, row)
                if m is not None:
                    keep_best(best, row, m, conf, i)
                    if m.distance == 1:
                        break
        if self._patterns:
            for i, (text, conf) in enumerate(reads):
                for row, m in self._match_patterns(text):
                    keep_best(best, row, m, conf, i)
        return self._finish(best, region, at)

    def _verify(self, text: str, row: int) -> Match | None:
        listed = self._c.plates[row]
        if text == listed:
            return Match("exact", text)
        list_name = self._c.lists[self._c.list_idx[row]]
        max_sub = self.options.substitutions_for(list_name)
        if len(text) == len(listed):
            diffs = [(i, a, b) for i, (a, b) in enumerate(zip(text, listed, strict=True)) if a != b]
            if all(self._abc.same_class(a, b) for _, a, b in diffs):
                if len(text) < self.options.min_fuzzy_length or len(diffs) > max_sub:
                    return None
                return Match("confusable", text, len(diffs), tuple(diffs))
        max_edit = self.options.edit_for(list_name)
        if max_edit == 0 or min(len(text), len(listed)) < self.options.min_fuzzy_length:
            return None
        aligned = align(text, listed, self._abc)
        if aligned is None:
            return None
        edits, subs, diffs = aligned
        if edits == 0 or edits > max_edit or subs > max_sub:
            return None
        return Match("edit", text, len(diffs), tuple(diffs))

    def _match_patterns(self, text: str) -> Iterator[tuple[int, Match]]:
        gate = self._pattern_gate.get(len(text))
        canon = text.translate(self._abc.canon)
        if gate is None or not gate.fullmatch(canon):
            return
        for pat in self._patterns[len(text)]:
            m = pat.regex.fullmatch(canon)
            if m is None:
                continue
            diffs = []
            for g, listed_ch in pat.literal_groups:
                pos = m.start(g)
                if text[pos] != listed_ch:
                    diffs.append((pos, text[pos], listed_ch))
            list_name = self._c.lists[self._c.list_idx[pat.row]]
            if len(diffs) <= self.options.substitutions_for(list_name):
                yield pat.row, Match("wildcard", text, len(diffs), tuple(diffs))

    def _finish(self, best: dict[int, tuple[tuple[int, int, int, float], Match]],
                region: str | None, at: datetime | None) -> list[tuple[WatchEntry, Match]]:
        when = at or datetime.now(UTC)
        now = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # naive means UTC
        c = self._c
        out = []
        for row, (rank, m) in best.items():
            eff, exp = c.effective[row], c.expires[row]
            if (eff == eff and now < eff) or (exp == exp and now >= exp):  # NaN means unset
                continue
            entry_region = c.regions[c.region_idx[row]]
            if region and entry_region and region.upper() != entry_region:
                continue
            out.append((int(c.priority[row]), rank, row, m))
        out.sort(key=lambda t: (t[0], t[1], t[2]))
        return [(self.entry(row), m) for _, _, row, m in out]

    # -- access -------------------------------------------------------------------------------

    def entry(self, row: int) -> WatchEntry:
        """The entry at `row`, built on demand."""
        c = self._c
        desc, reason, notes, source = c.extras.get(row, ("", "", "", ""))
        return WatchEntry(
            plate=c.plates[row], list=c.lists[c.list_idx[row]], region=c.regions[c.region_idx[row]],
            priority=int(c.priority[row]), covert=bool(c.covert[row]),
            effective=from_ts(c.effective[row]), expires=from_ts(c.expires[row]),
            description=desc, reason=reason, notes=notes, source=source,
        )

    def entries(self) -> Iterator[WatchEntry]:
        for row in range(len(self)):
            yield self.entry(row)

    def records(self) -> Iterator[dict[str, Any]]:
        """Entries as JSON-ready dicts with only the non-default fields (the snapshot format)."""
        for row in range(len(self)):
            yield self._c.record(row)

    def counts(self) -> dict[str, int]:
        """Entries per list name."""
        idx, n = np.unique(self._c.list_idx, return_counts=True)
        return {self._c.lists[int(i)]: int(k) for i, k in zip(idx, n, strict=True)}

    def index_bytes(self) -> int:
        """Bytes held by the numpy columns and indexes (not the Python extras)."""
        arrays = [self._full_keys.keys, self._full_keys.coarse, self._del_keys.keys, self._del_keys.coarse,
                  self._c.plates_array(),
                  self._c.list_idx, self._c.region_idx, self._c.priority, self._c.covert,
                  self._c.effective, self._c.expires]
        return int(sum(a.nbytes for a in arrays))

    def with_changes(self, add: Iterable[Mapping[str, Any]], remove: Iterable[Mapping[str, Any]],
                     version: int, list_id: str | None = None) -> tuple[Watchlist, int, int]:
        """Apply a delta: returns (new Watchlist, entries removed, entries replaced).

        Entries are identified by (plate, list, region); an added entry with the key of an existing
        one replaces it. Removing a key that is not present is not an error (deltas are idempotent).
        """
        builder = WatchlistBuilder(self.options)
        new_rows = [builder.parse_record(r, f"add[{i}]") for i, r in enumerate(add)]
        gone = {key_of(r, f"remove[{i}]") for i, r in enumerate(remove)}
        replaced_keys = {row_key(r) for r in new_rows}
        c = self._c
        removed = replaced = 0
        for row in range(len(self)):
            key = (c.plates[row], c.lists[c.list_idx[row]], c.regions[c.region_idx[row]] or "")
            if key in replaced_keys:
                replaced += 1
            elif key in gone:
                removed += 1
            else:
                builder.add_row(c.row(row))
        kept = len(builder)
        for r in new_rows:
            builder.add_row(r)

        def where(row: int) -> str:
            return f"add[{row - kept}]" if row >= kept else f"the list in force ({builder.plate(row)})"

        wl = builder.build(version=version, list_id=self.list_id if list_id is None else list_id, where=where)
        return wl, removed, replaced

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The columns as plain arrays (no pickles) for `np.savez`; inverse of `from_arrays`."""
        c = self._c
        meta = {
            "version": self.version, "list_id": self.list_id, "lists": list(c.lists),
            "regions": list(c.regions), "extras": [[row, *texts] for row, texts in c.extras.items()],
        }
        return {
            "plates": c.plates_array(), "list_idx": c.list_idx, "region_idx": c.region_idx,
            "priority": c.priority, "covert": c.covert, "effective": c.effective, "expires": c.expires,
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], options: MatchOptions | None = None) -> Watchlist:
        """Rebuild from `to_arrays` output (the car's own saved state, already validated once)."""
        meta = json.loads(arrays["meta"].tobytes())
        n = len(arrays["plates"])
        cols = Columns(
            plates=arrays["plates"].astype(f"U{MAX_PLATE_LEN}").tolist(),
            lists=tuple(meta["lists"]),
            list_idx=arrays["list_idx"].astype(np.uint16),
            regions=tuple(meta["regions"]),
            region_idx=arrays["region_idx"].astype(np.uint16),
            priority=arrays["priority"].astype(np.int8),
            covert=arrays["covert"].astype(bool),
            effective=arrays["effective"].astype(np.float64),
            expires=arrays["expires"].astype(np.float64),
            extras={int(e[0]): (str(e[1]), str(e[2]), str(e[3]), str(e[4])) for e in meta["extras"]},
        )
        for name in ("list_idx", "region_idx", "priority", "covert", "effective", "expires"):
            if len(getattr(cols, name)) != n:
                raise WatchlistError(f"saved watchlist: column {name} has {len(getattr(cols, name))} rows, "
                                     f"plates has {n}")
        if n and (int(cols.list_idx.max()) >= len(cols.lists) or int(cols.region_idx.max()) >= len(cols.regions)):
            raise WatchlistError("saved watchlist: list or region index out of range")
        return cls(cols, options or MatchOptions(), version=int(meta["version"]), list_id=str(meta["list_id"]))


class _KeyIndex:
    """Sorted packed keys plus every `_BLOCK`-th key as a small, cache-resident directory.

    `np.searchsorted` over millions of keys costs a cache miss per level; here the directory is
    searched instead and the final step reads one contiguous block per query, for all queries of a
    read in a few vectorised calls.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.coarse = keys[::_BLOCK].copy()
        self._offsets = np.arange(_BLOCK)

    def _window(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start of the block holding the first key >= q, and that block (padded with the max key)."""
        n = len(self.keys)
        start = np.maximum(np.searchsorted(self.coarse, q, "left") - 1, 0) * _BLOCK
        idx = start[:, None] + self._offsets
        return start, self.keys[np.minimum(idx, n - 1)]

    def lookup(self, uq: np.ndarray, inv: np.ndarray) -> Iterator[tuple[int, int]]:
        """(query index, row) for every key whose hash bits equal a query hash.

        `uq, inv = np.unique(masked_queries, return_inverse=True)`: sorted distinct queries share
        cache lines, and one read's queries repeat a lot (its candidates differ by one character).
        """
        n = len(self.keys)
        if not n:
            return
        start, win = self._window(uq)
        # Keys beyond the end are padded with the last key; they are never < a query they don't precede.
        lo = start + (win < uq[:, None]).sum(axis=1)
        top = uq | ROW_BITS
        below = (win < top[:, None]).sum(axis=1)
        hi = start + below
        spill = np.nonzero((below == _BLOCK) & (start + _BLOCK < n))[0]
        if len(spill):  # a run of equal hashes longer than the block: finish with a plain search
            hi[spill] = np.searchsorted(self.keys, top[spill], "left")
        lo = np.minimum(lo, n)
        hi = np.minimum(hi, n)
        for u in np.nonzero(hi > lo)[0].tolist():
            rows = (self.keys[lo[u]:hi[u]] & ROW_BITS).tolist()
            for j in np.nonzero(inv == u)[0].tolist():
                for row in rows:
                    yield j, row
