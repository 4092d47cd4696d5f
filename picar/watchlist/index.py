"""The in-car watchlist (hotlist): a compact column store of entries and a fast fuzzy matcher.

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from picar.isotime import utc_iso
from picar.types import Match, WatchEntry

MAX_PLATE_LEN = 10
DEFAULT_CONFUSABLES: tuple[str, ...] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_STRIP = str.maketrans("", "", " -.\t")
_PLATE_RE = re.compile(rf"[A-Z0-9]{{1,{MAX_PLATE_LEN}}}")
_PATTERN_RE = re.compile(rf"[A-Z0-9*?]{{1,{MAX_PLATE_LEN}}}")
_MASK = (1 << 64) - 1
_P = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)
_MIX = 0xBF58476D1CE4E5B9
_ROW_BITS = np.uint64((1 << 24) - 1)
_HASH_BITS = np.uint64(_MASK ^ ((1 << 24) - 1))
MAX_ENTRIES = (1 << 24) - 1
_BLOCK = 32
# Exact and confusable matches are the same plate up to look-alike characters: between them the OCR's
# better candidate wins, so the officer sees what the camera most likely read and which characters to
# check, not a weak candidate that happens to spell the listing. Wildcards and edits rank after them.
_KIND_RANK = {"exact": 0, "confusable": 0, "wildcard": 1, "edit": 2}
ENTRY_FIELDS = (
    "plate", "list", "region", "priority", "covert", "effective", "expires",
    "description", "reason", "notes", "source",
)
_FIELD_SET = frozenset(ENTRY_FIELDS)
_CORE_FIELDS = frozenset(ENTRY_FIELDS[:7])
_NAN = float("nan")


class WatchlistError(ValueError):
    """An entry or option that cannot be accepted; the message names the line/field and value."""


def normalise_plate(text: str) -> str:
    """Upper-case and strip spaces, dashes and dots; the result may still be invalid."""
    return text.translate(_STRIP).upper()


def parse_plate(text: str, where: str, allow_wildcards: bool = True) -> str:
    """Normalise a listed plate and check it is 1..10 characters of A-Z0-9 (or `*`/`?`)."""
    plate = normalise_plate(text)
    ok = _PATTERN_RE.fullmatch(plate) if allow_wildcards else _PLATE_RE.fullmatch(plate)
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


@dataclass(frozen=True)
class MatchOptions:
    """How loose a match may be, per list name (key "default" for the others).

    max_substitutions: confusable-character substitutions allowed (0 = exact only).
    max_edit: non-confusable insert/delete/substitute operations allowed, 0 or 1.
    Wildcards: `?` one character, `*` a run of 0..wildcard_run characters; a pattern needs at least
    min_literals literal characters and at most max_stars `*`; at most max_wildcards patterns in a list.
    Reads and entries shorter than min_fuzzy_length only ever match exactly.
    """

    confusables: tuple[str, ...] = DEFAULT_CONFUSABLES
    max_substitutions: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    max_edit: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    wildcard_run: int = 3
    min_literals: int = 3
    max_stars: int = 2
    max_wildcards: int = 1000
    min_fuzzy_length: int = 4

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for cls in self.confusables:
            for ch in cls:
                if ch not in ALPHABET:
                    raise WatchlistError(f"confusables: {ch!r} in class {cls!r} is not A-Z or 0-9")
                if ch in seen:
                    raise WatchlistError(
                        f"confusables: {ch!r} is in both {seen[ch]!r} and {cls!r}; merge them into one class"
                    )
                seen[ch] = cls
        for name, limits, top in (("max_substitutions", self.max_substitutions, MAX_PLATE_LEN),
                                  ("max_edit", self.max_edit, 1)):
            for key, value in limits.items():
                if not isinstance(value, int) or not 0 <= value <= top:
                    why = " (the index covers one edit; more would match too many plates)" if top == 1 else ""
                    raise WatchlistError(f"{name}[{key!r}] = {value!r}: allowed 0..{top}{why}")
        if not 0 <= self.max_stars <= 2 or self.wildcard_run < 0 or self.min_literals < 1:
            raise WatchlistError("wildcard limits: max_stars 0..2, wildcard_run >= 0, min_literals >= 1")

    def substitutions_for(self, list_name: str) -> int:
        return self.max_substitutions.get(list_name, self.max_substitutions.get("default", 1))

    def edit_for(self, list_name: str) -> int:
        return self.max_edit.get(list_name, self.max_edit.get("default", 1))


class _Alphabet:
    """Canonical codes: confusable characters share one code, codes start at 1 (0 is padding)."""

    def __init__(self, confusables: Sequence[str]) -> None:
        rep = {ch: ch for ch in ALPHABET}
        for cls in confusables:
            for ch in cls:
                rep[ch] = cls[0]
        reps = sorted(set(rep.values()))
        self.code = {ch: reps.index(rep[ch]) + 1 for ch in ALPHABET}
        self.canon = str.maketrans({ch: rep[ch] for ch in ALPHABET})
        lut = np.zeros(256, dtype=np.uint8)
        for ch, c in self.code.items():
            lut[ord(ch)] = c
        self.lut = lut

    def same_class(self, a: str, b: str) -> bool:
        return self.code.get(a, -1) == self.code.get(b, -2)

    def full_hash(self, text: str) -> int:
        """Hash of `text`'s canonical form (the same function `_column_hashes` vectorises)."""
        h = 0
        code = self.code
        for ch in reversed(text):
            h = (h * _P + code[ch]) & _MASK
        return _mix(h)

    def deletion_hashes(self, text: str) -> list[int]:
        """Hashes of the canonical form with each one character deleted."""
        code = self.code
        pre = [0]
        power = 1
        for ch in text:
            pre.append((pre[-1] + code[ch] * power) & _MASK)
            power = (power * _P) & _MASK
        full = pre[-1]
        return [_mix((pre[p] + (full - pre[p + 1]) * _P_INV) & _MASK) for p in range(len(text))]


def _mix(h: int) -> int:
    """Finalise a polynomial hash so its high bits (the ones the index keeps) depend on every
    character; the first character alone would only touch the low bits."""
    h = ((h ^ (h >> 31)) * _MIX) & _MASK
    return h ^ (h >> 29)


def _mix_array(h: np.ndarray) -> np.ndarray:
    h = (h ^ (h >> np.uint64(31))) * np.uint64(_MIX)
    return h ^ (h >> np.uint64(29))


def _column_hashes(codes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Vectorised `_Alphabet.full_hash` / `deletion_hashes` for an (n, MAX_PLATE_LEN) array of codes."""
    pre = [np.zeros(codes.shape[0], dtype=np.uint64)]
    power = 1
    for i in range(codes.shape[1]):
        pre.append(pre[-1] + codes[:, i].astype(np.uint64) * np.uint64(power))
        power = (power * _P) & _MASK
    full = pre[-1]
    inv = np.uint64(_P_INV)
    dels = [_mix_array(pre[k] + (full - pre[k + 1]) * inv) for k in range(codes.shape[1])]
    return _mix_array(full), dels


@dataclass(frozen=True)
class _Pattern:
    row: int
    regex: re.Pattern[str]
    literal_groups: tuple[tuple[int, str], ...]  # (group number, listed literal)


class Watchlist:
    """An immutable, indexed watchlist: build with `WatchlistBuilder`, `from_entries` or `from_records`."""

    def __init__(self, cols: _Columns, options: MatchOptions, version: int = 0, list_id: str = "") -> None:
        self.options = options
        self.version = version
        self.list_id = list_id
        self._c = cols
        self._abc = _Alphabet(options.confusables)
        n = len(cols.plates)
        if n > MAX_ENTRIES:
            raise WatchlistError(f"{n} entries; at most {MAX_ENTRIES} are supported")
        raw = cols.plates_array().view(np.uint8).reshape(n, MAX_PLATE_LEN)
        wild = ((raw == ord("*")) | (raw == ord("?"))).any(axis=1)
        self._wild_rows = np.nonzero(wild)[0]
        if len(self._wild_rows) > options.max_wildcards:
            raise WatchlistError(
                f"{len(self._wild_rows)} wildcard entries; at most {options.max_wildcards} are allowed"
            )
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
        return builder.build(version=version, list_id=list_id)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], options: MatchOptions | None = None,
                     version: int = 0, list_id: str = "") -> Watchlist:
        """Build from JSON entry records (as in snapshots and as `watchlist_io.read_csv` returns)."""
        builder = WatchlistBuilder(options)
        for i, rec in enumerate(records):
            builder.add_record(rec, f"entries[{i}]")
        return builder.build(version=version, list_id=list_id)

    def _build_index(self, raw: np.ndarray, plain: np.ndarray) -> None:
        """Sorted uint64 keys: the top 40 bits of a canonical-form hash, the low 24 bits the row.

        Packing the row into the key lets a plain `np.sort` (much faster than argsort) build the
        index and halves its memory; 40 hash bits leave ~1e-5 false candidates per lookup, and every
        candidate is verified against the real plate anyway.
        """
        rows = np.nonzero(plain)[0].astype(np.uint64)
        codes = self._abc.lut[raw[rows]]
        lengths = np.count_nonzero(codes, axis=1)
        full, dels = _column_hashes(codes)
        del codes
        self._full_keys = _KeyIndex(np.sort((full & _HASH_BITS) | rows))
        del full
        fuzzy_ok = lengths >= self.options.min_fuzzy_length
        keeps = [(lengths > k) & fuzzy_ok for k in range(len(dels))]
        dk = np.empty(int(sum(int(k.sum()) for k in keeps)), dtype=np.uint64)
        at = 0
        for h, keep in zip(dels, keeps, strict=True):
            part = (h[keep] & _HASH_BITS) | rows[keep]
            dk[at:at + len(part)] = part
            at += len(part)
        del dels, keeps
        dk.sort()
        self._del_keys = _KeyIndex(dk)

    def _build_patterns(self) -> None:
        """Compile every wildcard entry once, on the canonical alphabet, grouped by read length."""
        opts = self.options
        by_len: dict[int, list[_Pattern]] = {}
        for row in self._wild_rows.tolist():
            pattern = self._c.plates[row]
            literals = sum(ch not in "*?" for ch in pattern)
            stars = pattern.count("*")
            where = f"wildcard entry {pattern!r} ({self._c.lists[self._c.list_idx[row]]})"
            if literals < opts.min_literals:
                raise WatchlistError(f"{where}: needs at least {opts.min_literals} literal characters")
            if stars > opts.max_stars:
                raise WatchlistError(f"{where}: at most {opts.max_stars} '*' allowed")
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
            if norm and norm not in seen and _PLATE_RE.fullmatch(norm):
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
        uq, inv = np.unique(np.array(queries, dtype=np.uint64) & _HASH_BITS, return_inverse=True)
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
                    _keep_best(best, row, m, conf, i)
                    break
        for row, cands in near.items():
            if row in best:
                continue  # an exact or confusable match outranks any edit match
            for i in sorted(cands):
                text, conf = reads[i]
                m = self._verify(text, row)
                if m is not None:
                    _keep_best(best, row, m, conf, i)
                    if m.distance == 1:
                        break
        if self._patterns:
            for i, (text, conf) in enumerate(reads):
                for row, m in self._match_patterns(text):
                    _keep_best(best, row, m, conf, i)
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
        aligned = _align(text, listed, self._abc)
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
            effective=_from_ts(c.effective[row]), expires=_from_ts(c.expires[row]),
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
        gone = {_key_of(r, f"remove[{i}]") for i, r in enumerate(remove)}
        replaced_keys = {_row_key(r) for r in new_rows}
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
        for r in new_rows:
            builder.add_row(r)
        wl = builder.build(version=version, list_id=self.list_id if list_id is None else list_id)
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
        cols = _Columns(
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
        top = uq | _ROW_BITS
        below = (win < top[:, None]).sum(axis=1)
        hi = start + below
        spill = np.nonzero((below == _BLOCK) & (start + _BLOCK < n))[0]
        if len(spill):  # a run of equal hashes longer than the block: finish with a plain search
            hi[spill] = np.searchsorted(self.keys, top[spill], "left")
        lo = np.minimum(lo, n)
        hi = np.minimum(hi, n)
        for u in np.nonzero(hi > lo)[0].tolist():
            rows = (self.keys[lo[u]:hi[u]] & _ROW_BITS).tolist()
            for j in np.nonzero(inv == u)[0].tolist():
                for row in rows:
                    yield j, row


def _keep_best(best: dict[int, tuple[tuple[int, int, int, float], Match]], row: int, m: Match,
               conf: float, cand: int) -> None:
    rank = (_KIND_RANK[m.kind], cand, len(m.differences), -conf)
    old = best.get(row)
    if old is None or rank < old[0]:
        best[row] = (rank, m)


def _align(read: str, listed: str, abc: _Alphabet) -> tuple[int, int, list[tuple[int, str, str]]] | None:
    """Align two texts at canonical edit distance <= 1, preferring fewest confusable substitutions.

    Returns (edits, confusable substitutions, differences as (read position, read char, listed
    char), with '' for the missing side of an insertion or deletion), or None if further apart.
    """
    ca, cb = read.translate(abc.canon), listed.translate(abc.canon)
    if len(read) == len(listed):
        hard = [i for i in range(len(ca)) if ca[i] != cb[i]]
        if len(hard) > 1:
            return None
        diffs = [(i, a, b) for i, (a, b) in enumerate(zip(read, listed, strict=True)) if a != b]
        return len(hard), len(diffs) - len(hard), diffs
    long_, short, extra_in_read = (read, listed, True) if len(read) > len(listed) else (listed, read, False)
    cl, cs = (ca, cb) if extra_in_read else (cb, ca)
    if len(cl) != len(cs) + 1:
        return None
    pre = 0
    while pre < len(cs) and cl[pre] == cs[pre]:
        pre += 1
    suf = 0
    while suf < len(cs) and cl[-1 - suf] == cs[-1 - suf]:
        suf += 1
    best: list[tuple[int, str, str]] | None = None
    # Deleting position k of the longer text gives the shorter one for every k in [n - suf, pre].
    for k in range(len(cs) - suf, pre + 1):
        rest = long_[:k] + long_[k + 1:]
        diffs = [(i + (i >= k and extra_in_read), a, b) if extra_in_read else (i, b, a)
                 for i, (a, b) in enumerate(zip(rest, short, strict=True)) if a != b]
        gap = (k, long_[k], "") if extra_in_read else (k, "", long_[k])
        diffs.append(gap)
        diffs.sort()
        if best is None or len(diffs) < len(best):
            best = diffs
    if best is None:
        return None
    return 1, len(best) - 1, best


def _from_ts(ts: float) -> datetime | None:
    return None if ts != ts else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float:
    return float("nan") if value is None else value.timestamp()


_Row = tuple[str, str, str | None, int, bool, float, float, tuple[str, str, str, str] | None]


def _row_key(r: _Row) -> tuple[str, str, str]:
    return (r[0], r[1], r[2] or "")


def _key_of(record: Mapping[str, Any], where: str) -> tuple[str, str, str]:
    """The identity of an entry: (plate, list, region); used by delta removals."""
    if not isinstance(record, Mapping) or "plate" not in record:
        raise WatchlistError(f"{where}: a removal needs at least a 'plate' (and 'list', 'region')")
    plate = parse_plate(str(record["plate"]), f"{where}, field 'plate'")
    region = record.get("region") or ""
    return (plate, str(record.get("list") or "stolen_vehicle"), str(region).upper())


@dataclass
class _Columns:
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

    def row(self, i: int) -> _Row:
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
            rec["effective"] = format_time(_from_ts(eff))
        if exp == exp:
            rec["expires"] = format_time(_from_ts(exp))
        if extras:
            for name, value in zip(("description", "reason", "notes", "source"), extras, strict=True):
                if value:
                    rec[name] = value
        return rec


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
        self._eff: list[float] = []  # NaN (the shared _NAN object) when unset
        self._exp: list[float] = []
        self._extras: dict[int, tuple[str, str, str, str]] = {}

    def __len__(self) -> int:
        return len(self._plates)

    def add_entry(self, e: WatchEntry, where: str) -> None:
        """Add a WatchEntry (its plate is normalised and checked)."""
        plate = parse_plate(e.plate, where)
        _check_priority(e.priority, where)
        extras = (e.description, e.reason, e.notes, e.source)
        self.add_row((plate, _check_list(e.list, where), _norm_region(e.region), e.priority, e.covert,
                      _ts(e.effective), _ts(e.expires), extras if any(extras) else None))

    def add_record(self, rec: Mapping[str, Any], where: str) -> None:
        """Add a JSON record (the snapshot/delta entry format); errors name `where` and the field."""
        self.add_row(self.parse_record(rec, where))

    def parse_record(self, rec: Mapping[str, Any], where: str) -> _Row:
        """Validate one JSON entry record into a row; raises WatchlistError naming the field."""
        if rec.__class__ is not dict and not isinstance(rec, Mapping):
            raise WatchlistError(f"{where}: an entry must be a JSON object, got {type(rec).__name__}")
        if not rec.keys() <= _FIELD_SET:
            unknown = sorted(set(rec) - _FIELD_SET)
            raise WatchlistError(f"{where}: unknown field(s) {unknown}; allowed {list(ENTRY_FIELDS)}")
        raw = rec.get("plate")
        if raw.__class__ is not str:
            raise WatchlistError(f"{where}, field 'plate': missing or not a string ({raw!r})")
        plate = raw.translate(_STRIP).upper()
        if not _PATTERN_RE.fullmatch(plate):
            parse_plate(raw, f"{where}, field 'plate'")
        list_name = rec.get("list", "stolen_vehicle")
        if list_name not in self._lists:
            _check_list(list_name, f"{where}, field 'list'")
        region = rec.get("region")
        if region is not None:
            if region.__class__ is not str:
                raise WatchlistError(f"{where}, field 'region': {region!r} is not a string")
            if region not in self._region_names:
                self._region_names[region] = _norm_region(region)
            region = self._region_names[region]
        prio = rec.get("priority", 2)
        if prio.__class__ is not int or not 1 <= prio <= 9:
            _check_priority(prio, f"{where}, field 'priority'")
        covert = rec.get("covert", False)
        if covert.__class__ is not bool:
            raise WatchlistError(f"{where}, field 'covert': {covert!r} is not true/false")
        eff = rec.get("effective")
        exp = rec.get("expires")
        eff_ts = _NAN if eff is None else _ts(parse_time(eff, f"{where}, field 'effective'"))
        exp_ts = _NAN if exp is None else _ts(parse_time(exp, f"{where}, field 'expires'", end_of_day=True))
        extras = None
        if len(rec) > 2 and not rec.keys() <= _CORE_FIELDS:
            texts = (rec.get("description", ""), rec.get("reason", ""), rec.get("notes", ""),
                     rec.get("source", ""))
            for name, value in zip(("description", "reason", "notes", "source"), texts, strict=True):
                if value.__class__ is not str:
                    raise WatchlistError(f"{where}, field '{name}': {value!r} is not a string")
            if any(texts):
                extras = texts
        return (plate, list_name, region, prio, covert, eff_ts, exp_ts, extras)

    def add_row(self, r: _Row) -> None:
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
        cols = _Columns(
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
        return Watchlist(cols, self.options, version=version, list_id=list_id)


def _check_priority(value: object, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9:
        raise WatchlistError(f"{where}: priority {value!r} must be an integer 1 (highest) .. 9")


def _check_list(value: object, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", value):
        raise WatchlistError(f"{where}: list name {value!r} must be 1-32 of a-z, 0-9, _")
    return value


def _norm_region(region: str | None) -> str | None:
    return region.strip().upper() or None if region else None
