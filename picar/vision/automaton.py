"""A region's plate grammars compiled into one weighted automaton over characters.

Every series of every grammar the region names (`picar.vision.grammar`) is spelt out into the sequences
of character sets it allows (`(B) D{2,3} L{3}`: B, digit, digit, letter x3 and B, digit x3, letter x3),
and all sequences share one prefix tree: the arcs of a node read one character of a set, a node where
sequences end carries the best of their weights and names their series. A free-text branch (letters
and digits, one step of memory) takes the plates that fit no series. Weights are log probabilities from
`picar.vision.priors`, times its `scale`: the series (its grammar's share of the region, its own share of
the grammar) and each repetition count and alternative of its pattern alike at the end, each character by
its frequency within its arc's set on the way. An arc that opens a later row of a two-row series is
marked; the decode lets it read only after the frames moved to a lower row (`picar.vision.ctc_grammar`).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import numpy as np

from picar.vision.grammar import Series, grammar_series
from picar.vision.priors import CLASSES, GrammarPriors

NEG = -1e9
FREE = -1  # series index of the free-text branch


@dataclass(frozen=True, eq=False)
class Automaton:
    """The compiled grammar: states 0..n_states-1, `start`, arcs reading one character each."""

    alphabet: str
    n_states: int
    start: int
    final: np.ndarray  # (states,) log weight of a text ending in the state; NEG where it cannot
    arc_src: np.ndarray  # (arcs,)
    arc_dst: np.ndarray  # (arcs,)
    arc_weight: np.ndarray  # (arcs, len(alphabet)) log weight of the arc reading each character; NEG: not allowed
    arc_new_row: np.ndarray  # (arcs,) bool: the arc reads the first character of a later row
    state_series: np.ndarray  # (states,) series a text ending here fits: index into `series`, or FREE
    series: tuple[str, ...]


Step = tuple[frozenset[str], bool]  # a character set, and whether it opens a later row


def _expansions(s: Series) -> list[tuple[tuple[Step, ...], float]]:
    """Every sequence of character sets series `s` allows, with the log probability of choosing it
    (each repetition count of an element alike, each option of a repetition alike)."""
    out: list[tuple[tuple[Step, ...], float]] = [((), 0.0)]
    for r, row in enumerate(s.rows):
        first = r > 0
        for group in row:
            for e in group:
                step: list[tuple[tuple[Step, ...], float]] = []
                for n in range(e.low, e.high + 1):
                    reps: list[tuple[tuple[Step, ...], float]] = [((), -math.log(e.high - e.low + 1))]
                    for i in range(n):
                        reps = [(seq + tuple((cs, first and i == 0 and k == 0) for k, cs in enumerate(opt)),
                                 w - math.log(len(e.options))) for seq, w in reps for opt in e.options]
                    step += reps
                out = [(a + b, wa + wb) for a, wa in out for b, wb in step]
                first = False
    return out


class _Builder:
    def __init__(self, alphabet: str, priors: GrammarPriors, chars: dict[str, float]) -> None:
        self.alphabet = alphabet
        self.priors = priors
        self.chars = chars
        self.n = 1  # state 0 is the start
        self.arcs: list[tuple[int, int, np.ndarray, bool]] = []
        self.children: dict[tuple[int, Step], int] = {}
        self.final: dict[int, tuple[float, int]] = {}  # state -> (log weight, series)
        self.weights_of: dict[frozenset[str], np.ndarray] = {}

    def weights(self, allowed: frozenset[str], extra: float = 0.0) -> np.ndarray:
        w = self.weights_of.get(allowed)
        if w is None:
            w = np.full(len(self.alphabet), NEG)
            for c in allowed:
                if c in self.alphabet:
                    w[self.alphabet.index(c)] = self.priors.char_logp(c, allowed, self.chars)
            self.weights_of[allowed] = w
        return w + extra

    def state(self) -> int:
        self.n += 1
        return self.n - 1

    def sequence(self, steps: tuple[Step, ...], logw: float, series: int) -> None:
        at = 0
        for step in steps:
            nxt = self.children.get((at, step))
            if nxt is None:
                nxt = self.children[(at, step)] = self.state()
                self.arcs.append((at, nxt, self.weights(step[0]), step[1]))
            at = nxt
        old = self.final.get(at)
        if old is None or logw > old[0]:
            self.final[at] = (logw if old is None else float(np.logaddexp(logw, old[0])), series)
        else:
            self.final[at] = (float(np.logaddexp(logw, old[0])), old[1])

    def free(self, logw: float) -> list[int]:
        """Free text: letters and digits, each class following the last by the fitted frequencies."""
        sets = {"L": frozenset(string.ascii_uppercase), "D": frozenset(string.digits)}
        after = {k: self.state() for k in CLASSES}
        p = self.priors
        for k in CLASSES:
            self.arcs.append((0, after[k], self.weights(sets[k], logw + math.log(p.free_start[k])), False))
            for prev in CLASSES:
                self.arcs.append((after[prev], after[k], self.weights(sets[k], math.log(p.free_next[prev][k])), False))
            self.final[after[k]] = (math.log(p.free_next[k]["end"]), FREE)
        return list(after.values())


_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...], str, int], tuple[GrammarPriors, Automaton]] = {}


def compile_region(grammars: tuple[str, ...], regions: tuple[str, ...], alphabet: str,
                   priors: GrammarPriors) -> Automaton:
    """The automaton of `grammars` (what the region names `regions` expand to; none: free text only),
    built once per grammars, alphabet and priors object."""
    key = (grammars, regions, alphabet, id(priors))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is priors:
        return hit[1]
    if len(_CACHE) >= 64:
        _CACHE.clear()
    b = _Builder(alphabet, priors, priors.chars_for(regions))
    free_share = priors.free_share_of(regions) if grammars else 1.0
    names: list[str] = []
    for g in grammars:
        for s in grammar_series(g):
            logw = math.log((1 - free_share) / len(grammars) * priors.series.get(s.name, 1e-6))
            names.append(s.name)
            for steps, w in _expansions(s):
                b.sequence(steps, logw + w, len(names) - 1)
    b.free(math.log(free_share))
    scale = priors.scale
    fin = np.full(b.n, NEG)
    series = np.full(b.n, -2)
    for state, (w, s_idx) in b.final.items():
        fin[state] = w * scale
        series[state] = s_idx
    weights = np.array([a[2] for a in b.arcs]).reshape(-1, len(alphabet))
    automaton = Automaton(
        alphabet=alphabet, n_states=b.n, start=0, final=fin,
        arc_src=np.array([a[0] for a in b.arcs], np.int64), arc_dst=np.array([a[1] for a in b.arcs], np.int64),
        arc_weight=np.where(weights > NEG / 2, weights * scale + priors.char_bonus, NEG),
        arc_new_row=np.array([a[3] for a in b.arcs], bool), state_series=series, series=tuple(names))
    _CACHE[key] = (priors, automaton)
    return automaton
