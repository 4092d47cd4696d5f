"""The most probable CTC reading that fits a plate format (Viterbi over frames and template slots).

Re-ranking a handful of beam candidates cannot fix a plate whose right reading is not among them:
`AIQ1175` read `AID1775` needs two changes the beam never proposed. Here the model's own frame
probabilities are searched for the best path whose collapsed text fits a template (`LLLDDDD`: letter,
letter, letter, digit, ...), so where the format demands a digit the model's best digit wins, with
the probability the model gives it. Templates are sets of allowed characters per position, as in
`picar.vision.formats`.

Paths, as in CTC: each frame emits the blank or a character; runs of one character collapse to one
and blanks separate repeats. A path's score is the sum of its frames' log probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from picar.types import CharRead

NEG = -1e9
SURE_BLANK = 0.99  # frames this sure of the blank collapse to one: no text path can use them cheaply
# (an int8 model's softmax tops out at 254/255: 0.999 would never be reached)
RARE = 1e-4  # a class never above this in any frame costs more than any accepted read: left out


@dataclass(frozen=True)
class GrammarRead:
    """The best format-fitting text of one crop and what the format costs."""

    text: str
    chars: tuple[CharRead, ...]  # each with its probability at its peak frame and the runners-up there
    log_cost: float  # its best path's log probability minus the unconstrained best path's (<= 0)


def template_masks(templates: Sequence[Sequence[frozenset[str]]], alphabet: str) -> tuple[np.ndarray, np.ndarray]:
    """Templates -> (mask [N, L, len(alphabet)] bool, lengths [N]); L is the longest template."""
    if not templates:
        raise ValueError("at least one template is needed")
    longest = max(len(t) for t in templates)
    mask = np.zeros((len(templates), longest, len(alphabet)), bool)
    for n, template in enumerate(templates):
        if not template:
            raise ValueError(f"template {n} is empty")
        for i, allowed in enumerate(template):
            mask[n, i] = [c in allowed for c in alphabet]
    return mask, np.array([len(t) for t in templates])


def compress_blanks(log_probs: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapse each run of frames that are surely blank into its first frame: (kept log probs, their
    frame numbers). Paths through such a run stay blank anyway; one frame is kept so that repeated
    characters on either side stay apart."""
    sure = log_probs[:, blank] >= np.log(SURE_BLANK)
    keep = ~sure
    keep[1:] |= sure[1:] & ~sure[:-1]
    keep[0] = True
    return log_probs[keep], np.flatnonzero(keep)


def best_fitting(probs: np.ndarray, mask: np.ndarray, lengths: np.ndarray, alphabet: str,
                 top: int = 3) -> list[GrammarRead]:
    """The best path of each template through CTC frame probabilities `probs` [T, len(alphabet) + 1]
    (blank last); the `top` best distinct texts over all templates, best first. Empty when no
    template can be spelt from the classes the frames hold."""
    a = len(alphabet)
    if probs.ndim != 2 or probs.shape[1] != a + 1:
        raise ValueError(f"probs must have shape (frames, {a + 1}), got {probs.shape}")
    if mask.shape[-1] != a:
        raise ValueError(f"template masks are for {mask.shape[-1]} classes, the alphabet has {a}")
    lp_all, frame_of = compress_blanks(np.log(np.maximum(probs.astype(np.float64), 1e-12)), a)
    classes = np.flatnonzero(probs[:, :a].max(axis=0) >= RARE)
    if classes.size == 0:
        return []
    lp = lp_all[:, classes]
    lp_blank = lp_all[:, a]
    emit_mask = np.where(mask[:, :, classes], 0.0, NEG)  # N, L, C
    scores, state, trail = _viterbi(lp, lp_blank, emit_mask, lengths)
    greedy = float(lp_all.max(axis=1).sum())
    out: list[GrammarRead] = []
    for m in np.argsort(-scores, kind="stable"):
        if scores[m] <= NEG / 2 or len(out) >= top:
            break
        runs = _backtrack(int(m), state[m], int(lengths[m]), *trail)
        text = "".join(alphabet[classes[k]] for k, _ in runs)
        if any(r.text == text for r in out):
            continue
        chars = tuple(_char_read(probs[frame_of[frames]], int(classes[k]), alphabet) for k, frames in runs)
        out.append(GrammarRead(text=text, chars=chars, log_cost=min(0.0, float(scores[m]) - greedy)))
    return out


def _viterbi(lp: np.ndarray, lp_blank: np.ndarray, emit_mask: np.ndarray, lengths: np.ndarray
             ) -> tuple[np.ndarray, list[tuple[str, int, int]], tuple[np.ndarray, ...]]:
    """Best path score per template, its final state, and the back-pointers to trace it."""
    frames, c = lp.shape
    n, length = emit_mask.shape[0], emit_mask.shape[1]
    blank = np.full((n, length + 1), NEG)  # blank after i characters
    char = np.full((n, length, c), NEG)  # emitting character i as class k
    blank[:, 0] = lp_blank[0]
    char[:, 0] = lp[0] + emit_mask[:, 0]
    src_blank = np.zeros((frames, n, length + 1), np.int8)
    src_char = np.zeros((frames, n, length, c), np.int8)
    arg1 = np.zeros((frames, n, length), np.int16)
    arg2 = np.zeros((frames, n, length), np.int16)
    rows, cols = np.arange(n)[:, None], np.arange(length)[None, :]
    for t in range(1, frames):
        first = np.argmax(char, axis=-1)  # N, L
        best1 = char[rows, cols, first]
        runner = char.copy()
        runner[rows, cols, first] = NEG
        second = np.argmax(runner, axis=-1)
        arg1[t], arg2[t] = first, second
        # character i as k: stay, open from the blank before it, or follow a different character i-1
        prev = np.full_like(char, NEG)
        if c > 1:  # with one class there is no different character to follow
            prev[:, 1:] = best1[:, :-1, None]
            prev[rows, cols[:, 1:], first[:, :-1]] = runner[rows, cols[:, :-1], second[:, :-1]]
        opened = blank[:, :length, None]
        src = (opened > char).astype(np.int8)
        best = np.maximum(char, opened)
        follow = prev > best
        src[follow] = 2
        src_char[t] = src
        char = np.where(follow, prev, best) + lp[t] + emit_mask
        # blank after i: stay, or close character i-1
        close = best1 > blank[:, 1:]
        src_blank[t, :, 1:] = close
        blank[:, 1:] = np.maximum(best1, blank[:, 1:])
        blank += lp_blank[t]
    scores = np.empty(n)
    states: list[tuple[str, int, int]] = []
    for m in range(n):
        end = int(lengths[m])
        k = int(np.argmax(char[m, end - 1]))
        if blank[m, end] >= char[m, end - 1, k]:
            scores[m] = blank[m, end]
            states.append(("b", end, -1))
        else:
            scores[m] = char[m, end - 1, k]
            states.append(("c", end - 1, k))
    return scores, states, (src_blank, src_char, arg1, arg2)


def _backtrack(m: int, state: tuple[str, int, int], length: int, src_blank: np.ndarray, src_char: np.ndarray,
               arg1: np.ndarray, arg2: np.ndarray) -> list[tuple[int, list[int]]]:
    """(class index, frames) of each character of template `m`'s best path, in reading order."""
    runs: list[tuple[int, list[int]]] = [(-1, []) for _ in range(length)]
    kind, i, k = state
    for t in range(src_blank.shape[0] - 1, -1, -1):
        if kind == "c":
            runs[i] = (k, [t, *runs[i][1]])
        if t == 0:
            break
        if kind == "b":
            if src_blank[t, m, i]:
                kind, i, k = "c", i - 1, int(arg1[t, m, i - 1])
        else:
            s = int(src_char[t, m, i, k])
            if s == 1:
                kind = "b"
            elif s == 2:
                j = int(arg1[t, m, i - 1])
                kind, i, k = "c", i - 1, j if j != k else int(arg2[t, m, i - 1])
    return runs


def _char_read(run: np.ndarray, cls: int, alphabet: str, alternatives: int = 2) -> CharRead:
    """A character from the frames of its run: its probability at its peak frame and the two best other
    characters there."""
    frame = run[int(np.argmax(run[:, cls]))]
    order = [int(j) for j in np.argsort(-frame[: len(alphabet)]) if j != cls][:alternatives]
    return CharRead(char=alphabet[cls], confidence=float(frame[cls]),
                    alternatives=tuple((alphabet[j], float(frame[j])) for j in order if frame[j] >= 1e-3))
