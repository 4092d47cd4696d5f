"""Plate grammars: the series of `picar.vision.grammar_data` parsed, sampled and matched.

`series(region)` lists what a camera's region allows, `fits(text, region)` names the series a text
belongs to, `sample_layout`/`sample_text` draw a plate text for the synthetic renderer, and
`picar.vision.automaton` compiles the same parsed series into the automaton the OCR decode searches.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from picar.vision.grammar_data import CYRILLIC_TO_LATIN, GRAMMARS, REGION_GRAMMARS, GrammarSpec, SeriesSpec

Charset = frozenset[str]


@dataclass(frozen=True)
class Element:
    """One pattern element: one of `options` (each a sequence of character sets), `low`..`high` times."""

    options: tuple[tuple[Charset, ...], ...]
    low: int = 1
    high: int = 1


@dataclass(frozen=True)
class Series:
    """A parsed series: its elements by row and printed group, in reading order."""

    name: str
    grammar: str
    pattern: str
    style: str
    share: float
    rows: tuple[tuple[tuple[Element, ...], ...], ...]  # rows -> groups -> elements

    @property
    def two_row(self) -> bool:
        return len(self.rows) > 1


class GrammarError(ValueError):
    """A pattern in the grammar data that does not parse, or a region nobody defined."""


_TOKEN = re.compile(r"(?:(?P<cls>[LDA])|\[(?P<set>[A-Z0-9-]+)\]|\((?P<alt>[A-Z0-9|]+)\))"
                    r"(?:\{(?P<lo>\d+)(?:,(?P<hi>\d+))?\})?")


def _charset(body: str, where: str) -> Charset:
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            if lo > hi:
                raise GrammarError(f"{where}: bad range {lo}-{hi}")
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return frozenset(chars)


def _element(m: re.Match[str], letters: Charset, where: str) -> Element:
    if m["cls"]:
        sets = {"L": letters, "D": frozenset(string.digits), "A": letters | frozenset(string.digits)}
        options: tuple[tuple[Charset, ...], ...] = ((sets[m["cls"]],),)
    elif m["set"]:
        options = ((_charset(m["set"], where),),)
    else:
        options = tuple(tuple(frozenset(c) for c in lit) for lit in m["alt"].split("|"))
        if any(not o for o in options):
            raise GrammarError(f"{where}: empty alternative in ({m['alt']})")
    low = int(m["lo"]) if m["lo"] else 1
    high = int(m["hi"]) if m["hi"] else low
    if not 0 < low <= high:
        raise GrammarError(f"{where}: bad repetition {{{m['lo']},{m['hi']}}}")
    return Element(options, low, high)


def parse(spec: SeriesSpec, grammar: GrammarSpec) -> Series:
    """A series spec parsed against its grammar's letter set; GrammarError names the series if it fails."""
    letters = frozenset(grammar.letters)
    rows = []
    for row in spec.pattern.split("/"):
        groups = []
        for group in row.split():
            pos, elements = 0, []
            while pos < len(group):
                m = _TOKEN.match(group, pos)
                if m is None or m.end() == pos:
                    raise GrammarError(f"series {spec.name}: cannot parse {group[pos:]!r} in {spec.pattern!r}")
                elements.append(_element(m, letters, f"series {spec.name}"))
                pos = m.end()
            groups.append(tuple(elements))
        if not groups:
            raise GrammarError(f"series {spec.name}: empty row in {spec.pattern!r}")
        rows.append(tuple(groups))
    return Series(spec.name, grammar.name, spec.pattern, spec.style, spec.share, tuple(rows))


@cache
def grammar_series(grammar: str) -> tuple[Series, ...]:
    """The parsed series of one grammar (`picar.vision.grammar_data.GRAMMARS`)."""
    if grammar not in GRAMMARS:
        raise GrammarError(f"unknown plate grammar {grammar!r}; known: {', '.join(sorted(GRAMMARS))}")
    spec = GRAMMARS[grammar]
    return tuple(parse(s, spec) for s in spec.series)


REGIONS: tuple[str, ...] = tuple(sorted(REGION_GRAMMARS))


def grammars_for(region: str | Sequence[str]) -> tuple[str, ...]:
    """The grammars a region names (`"md"` -> md, transnistria, ro, ua) or a list of regions names,
    each once, in order. Raises GrammarError for an unknown name."""
    names = [region] if isinstance(region, str) else list(region)
    if not names:
        raise GrammarError("a region list must name at least one region")
    out: dict[str, None] = {}
    for name in names:
        key = name.lower()
        if key not in REGION_GRAMMARS:
            raise GrammarError(f"unknown plate region {name!r}; allowed regions: {', '.join(REGIONS)}")
        out.update(dict.fromkeys(REGION_GRAMMARS[key]))
    return tuple(out)


def series(region: str | Sequence[str]) -> list[Series]:
    """Every series a region (or list of regions) allows, grammar by grammar."""
    return [s for g in grammars_for(region) for s in grammar_series(g)]


def _regex(s: Series) -> str:
    def cls(cs: Charset) -> str:
        return "[" + "".join(sorted(cs)) + "]"

    parts = []
    for row in s.rows:
        for group in row:
            for e in group:
                alts = "|".join("".join(cls(cs) for cs in opt) for opt in e.options)
                parts.append(f"(?:{alts}){{{e.low},{e.high}}}")
    return "".join(parts)


def language_size(s: Series) -> float:
    """How many texts series `s` can spell (counting each way of spelling once): the smaller, the more
    telling a match."""
    total = 1.0
    for row in s.rows:
        for group in row:
            for e in group:
                one = sum(float(np.prod([len(cs) for cs in opt])) for opt in e.options)
                total *= sum(one ** n for n in range(e.low, e.high + 1))
    return total


@lru_cache(maxsize=64)
def _matchers(grammars: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every series' regular expression, the likeliest series for a text that fits it first: the largest
    share per text it can spell (`MAI123` is md.police rather than md.current)."""
    pool = sorted((s for g in grammars for s in grammar_series(g)), key=lambda s: -s.share / language_size(s))
    return tuple((s.name, re.compile(_regex(s))) for s in pool)


def fits(text: str, region: str | Sequence[str]) -> str | None:
    """The name of the likeliest series of `region` that `text` (A-Z0-9, no separators) belongs to, or None."""
    for name, rx in _matchers(grammars_for(region)):
        if rx.fullmatch(text):
            return name
    return None


def sample_layout(s: Series, rng: np.random.Generator) -> tuple[tuple[str, ...], ...]:
    """A random plate of series `s` as printed: rows of groups (e.g. (("CJ", "07", "XYZ"),)), each
    repetition count, option and character drawn uniformly."""
    rows = []
    for row in s.rows:
        groups = []
        for group in row:
            text: list[str] = []
            for e in group:
                for _ in range(int(rng.integers(e.low, e.high + 1))):
                    option = e.options[int(rng.integers(len(e.options)))]
                    text.extend(sorted(cs)[int(rng.integers(len(cs)))] for cs in option)
            groups.append("".join(text))
        rows.append(tuple(groups))
    return tuple(rows)


def sample_text(s: Series, rng: np.random.Generator) -> str:
    """A random plate text of series `s`, as the OCR reads it (no separators, rows in order)."""
    return "".join("".join(row) for row in sample_layout(s, rng))


def pick_series(region: str | Sequence[str], rng: np.random.Generator, by_share: bool = True) -> Series:
    """One series of `region`, drawn by its `share` (or uniformly)."""
    pool = series(region)
    weights = np.array([s.share if by_share else 1.0 for s in pool], float)
    return pool[int(rng.choice(len(pool), p=weights / weights.sum()))]


@cache
def shortest_plate() -> int:
    """The fewest characters any series of any grammar allows (German `B A 1`: 3)."""
    return min(sum(e.low * min(len(opt) for opt in e.options) for row in s.rows for group in row for e in group)
               for s in all_series())


def to_latin(text: str) -> str:
    """Upper-case `text` with Cyrillic plate letters as their Latin look-alikes (Ukrainian, Transnistrian and
    Russian plates as the OCR reads them); other characters unchanged."""
    return "".join(CYRILLIC_TO_LATIN.get(c, c) for c in text.upper())


def all_series() -> Iterable[Series]:
    """Every series of every grammar."""
    for g in GRAMMARS:
        yield from grammar_series(g)
