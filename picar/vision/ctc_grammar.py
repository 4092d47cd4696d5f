"""The one decode: the best paths of a plate grammar's automaton through a crop's CTC frames.

A path through the frames, as in CTC, emits the blank or a character in each frame; runs of one
character collapse and blanks separate repeats. Here the characters must also walk the region's
automaton (`picar.vision.automaton`): a series of some grammar, or the free-text branch. A path scores
the sum of its frames' log probabilities (the model's own) plus the automaton's weights on the arcs it
reads (the priors); the text, its series and each character's confidence come from the best path, and
the candidates from the best path of every other series (and of the free text), each with the same two
scores. On a two-row plate's series, the first character of a later row may only be read once the
frames (read row by row, `frames_per_row` to a row) have moved to a lower row.

The search is a Viterbi over (automaton state x blank-or-character) for all crops of a batch at once,
on frames where runs the model is sure of (one class at 0.99 or more) are merged into one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from picar.types import CharRead, CtcFrames, Reading
from picar.vision.automaton import FREE, NEG, Automaton

SURE = 0.99  # frames this sure of one class merge with the frame before when that was sure of it too
# (an int8 model's softmax tops out at 254/255: 0.999 would never be reached)
RARE = 0.02  # a class never above this in any frame of a crop is left out of its search
MAX_CLASSES = 10  # and no more than this many classes, the likeliest (a plate has rarely more distinct ones)
# The smallest probability a frame is taken to give a class: an int8 model's softmax steps by 1/255, so
# its 0 means "below about 0.004", not "impossible"; one such frame must not outweigh all others.
FLOOR = 1e-3
HOPELESS = -7.0  # a one-character change that costs the path more than this (about 1e-3) is no candidate


Frames = CtcFrames


def prepare(probs: np.ndarray, alphabet: str, frames_per_row: int | None = None) -> Frames:
    """Frames (one crop's [frames, classes + blank] probabilities, read row by row) merged where sure:
    a frame joins the one before when both are that sure of the same class (a character's run only
    within one row of frames)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != len(alphabet) + 1:
        raise ValueError(f"probs must have shape (frames, {len(alphabet) + 1}), got {p.shape}")
    best = np.argmax(p, axis=1)
    sure = p[np.arange(len(p)), best] >= SURE
    row = np.arange(len(p)) // (frames_per_row or len(p))
    merge = np.zeros(len(p), bool)
    merge[1:] = sure[1:] & sure[:-1] & (best[1:] == best[:-1]) & (
        (row[1:] == row[:-1]) | (best[1:] == p.shape[1] - 1))
    starts = np.flatnonzero(~merge)
    last_row = row[np.append(starts[1:], len(p)) - 1]
    cross = np.zeros(len(starts), bool)
    cross[1:] = last_row[1:] > last_row[:-1]
    logp = np.add.reduceat(np.log(np.maximum(p, FLOOR)), starts, axis=0)
    return CtcFrames(logp, np.maximum.reduceat(p, starts, axis=0), cross, alphabet)


@dataclass(frozen=True, eq=False)
class _Graph:
    """The automaton unrolled into DP states for one set of classes: blanks, blanks after a row change,
    character emissions; the edges between them sorted by target, so a state's incoming edges are a run."""

    n_blank: int  # DP states below this are blanks (of automaton states or after a row change)
    emit_cls: np.ndarray  # class of each emission state (DP state n_blank + j)
    state_cls: np.ndarray  # class each DP state emits (the blank for blanks)
    src: np.ndarray
    weight: np.ndarray
    dst: np.ndarray  # the DP state each edge leads into (ascending)
    first: np.ndarray  # the first edge into each DP state
    in_count: np.ndarray  # and how many edges come in
    crossing: np.ndarray  # edges taken only when the frames move to a lower row
    final: np.ndarray  # log weight of ending in each DP state
    series: np.ndarray  # series a text ending in each DP state fits (FREE; -2: none ends there)
    start: int


def _stable_order(keys: np.ndarray, bound: int) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for keys in [0, bound): as 16-bit keys where they fit, which numpy
    sorts by radix (7 times faster on a graph's 9,000 edges)."""
    return np.argsort(keys.astype(np.uint16) if bound <= 1 << 16 else keys, kind="stable")


def _alive(a: Automaton, arc_ok: np.ndarray) -> np.ndarray:
    """States on some path from the start to an end that reads only arcs in `arc_ok`."""
    fwd = np.zeros(a.n_states, bool)
    fwd[a.start] = True
    bwd = a.final > NEG / 2
    src, dst = a.arc_src[arc_ok], a.arc_dst[arc_ok]
    for reach, frm, to in ((fwd, src, dst), (bwd, dst, src)):
        while True:
            more = to[reach[frm]]
            new = more[~reach[more]]
            if not len(new):
                break
            reach[new] = True
    return fwd & bwd


def _graph(a: Automaton, active: np.ndarray) -> _Graph:
    blank_cls = len(a.alphabet)
    by_class = _arcs_by_class(a)
    classes = np.flatnonzero(active)
    arc_of = np.concatenate([by_class[c] for c in classes])
    cls_of = np.repeat(classes, [len(by_class[c]) for c in classes])
    arc_ok = np.zeros(len(a.arc_src), bool)
    arc_ok[arc_of] = True
    alive = _alive(a, arc_ok)
    alive[a.start] = True
    keep = alive[a.arc_src[arc_of]] & alive[a.arc_dst[arc_of]]
    emit_arc, emit_cls = arc_of[keep], cls_of[keep]
    states = np.flatnonzero(alive)
    index = np.full(a.n_states, -1)
    index[states] = np.arange(len(states))
    n = len(states)
    emit_w = a.arc_weight[emit_arc, emit_cls]
    new_row = a.arc_new_row[emit_arc]
    e_src, e_dst = index[a.arc_src[emit_arc]], index[a.arc_dst[emit_arc]]
    post_of = np.flatnonzero(np.bincount(e_src[new_row], minlength=n))  # np.unique's result, faster
    post_index = np.full(n, -1)
    post_index[post_of] = n + np.arange(len(post_of))
    base = n + len(post_of)
    m = len(emit_arc)
    emit_ids = base + np.arange(m)
    # direct edges: a character straight after a different one, through the state between their arcs
    order_in = _stable_order(e_dst, n)
    order_out = _stable_order(e_src, n)
    out_cnt = np.bincount(e_src, minlength=n)
    out_start = np.concatenate(([0], np.cumsum(out_cnt)[:-1]))
    rep = out_cnt[e_dst[order_in]]
    pair_in = np.repeat(order_in, rep)
    offs = np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep)
    pair_out = order_out[np.repeat(out_start[e_dst[order_in]], rep) + offs]
    differ = emit_cls[pair_in] != emit_cls[pair_out]
    pair_in, pair_out = pair_in[differ], pair_out[differ]
    posts = np.arange(len(post_of)) + n
    rows = np.flatnonzero(new_row)  # a later row's first character may also open as the frames change row
    src = np.concatenate((np.arange(n), post_of, posts, emit_ids, np.where(new_row, post_index[e_src], e_src),
                          emit_ids, emit_ids[pair_in], e_src[rows]))
    dst = np.concatenate((np.arange(n), posts, posts, emit_ids, emit_ids, e_dst, emit_ids[pair_out], emit_ids[rows]))
    weight = np.concatenate((np.zeros(n + 2 * len(post_of) + m), emit_w, np.zeros(m), emit_w[pair_out],
                             emit_w[rows]))
    crossing = np.concatenate((np.zeros(n + len(post_of), bool), np.ones(len(post_of), bool),
                               np.zeros(3 * m, bool), new_row[pair_out], np.ones(len(rows), bool)))
    size = base + m
    order = _stable_order(dst, size)
    counts = np.bincount(dst, minlength=size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    state_series = a.state_series[states]
    return _Graph(base, emit_cls, np.concatenate((np.full(base, blank_cls), emit_cls)), src[order],
                  weight[order], dst[order], starts, counts, np.flatnonzero(crossing[order]),
                  np.concatenate((a.final[states], a.final[states[post_of]], a.final[states[e_dst]])),
                  np.concatenate((state_series, state_series[post_of], state_series[e_dst])),
                  int(index[a.start]))


def _active(f: Frames, n: int) -> np.ndarray:
    """The classes a crop's search may read: above RARE in some frame, at most MAX_CLASSES of them (those
    the frames give most), so that a noisy crop cannot blow the automaton up."""
    peak = f.peak[:, :n].max(axis=0)
    active = peak >= RARE
    if active.sum() > MAX_CLASSES:
        active[:] = False
        active[np.argsort(-peak, kind="stable")[:MAX_CLASSES]] = True
    return active


_BY_CLASS: dict[int, tuple[Automaton, list[np.ndarray]]] = {}


def _arcs_by_class(a: Automaton) -> list[np.ndarray]:
    """For each class, the arcs that may read it."""
    hit = _BY_CLASS.get(id(a))
    if hit is None or hit[0] is not a:
        allowed = a.arc_weight > NEG / 2
        hit = _BY_CLASS[id(a)] = (a, [np.flatnonzero(allowed[:, c]) for c in range(allowed.shape[1])])
    return hit[1]


_GRAPHS: OrderedDict[tuple[int, bytes], tuple[Automaton, _Graph]] = OrderedDict()
GRAPH_CACHE = 32  # class sets remembered, least recently used first out (a vehicle pass repeats its own)


def _graph_for(a: Automaton, active: np.ndarray) -> _Graph:
    """`_graph`, remembered for the last GRAPH_CACHE class sets (a plate's frames and cuts share theirs)."""
    key = (id(a), active.tobytes())
    hit = _GRAPHS.get(key)
    if hit is not None and hit[0] is a:
        _GRAPHS.move_to_end(key)
        return hit[1]
    g = _graph(a, active)
    _GRAPHS[key] = (a, g)
    while len(_GRAPHS) > GRAPH_CACHE:
        _GRAPHS.popitem(last=False)
    return g


GROUP_EDGES = 20000  # crops whose unrolled automata together stay under this run side by side in one Viterbi


def search(batch: list[Frames], a: Automaton, top: int = 8) -> list[list[Reading]]:
    """The best path of each series (and of the free text) through each crop's frames, best first, at
    most `top` distinct texts per crop; an empty list where no path reads a character. Each crop gets
    the automaton unrolled for its own classes; small ones run side by side in one Viterbi."""
    actives = [_active(f, len(a.alphabet)) for f in batch]
    out: list[list[Reading]] = [[] for _ in batch]  # a crop with no class above RARE reads nothing
    todo = [k for k, act in enumerate(actives) if act.any()]
    graphs = {k: _graph_for(a, actives[k]) for k in todo}
    group: list[int] = []
    for k in todo:
        if group and sum(len(graphs[i].src) for i in group) + len(graphs[k].src) > GROUP_EDGES:
            _search_into(out, group, batch, graphs, a, top)
            group = []
        group.append(k)
    if group:
        _search_into(out, group, batch, graphs, a, top)
    return out


def _search_into(out: list[list[Reading]], group: list[int], batch: list[Frames], graphs: dict[int, _Graph],
                 a: Automaton, top: int) -> None:
    for k, found in zip(group, _search([batch[i] for i in group], [graphs[i] for i in group], a, top), strict=True):
        out[k] = found


def _search(batch: list[Frames], graphs: list[_Graph], a: Automaton, top: int) -> list[list[Reading]]:
    length = max(len(f.logp) for f in batch)
    sizes = np.array([len(g.state_cls) for g in graphs])
    n_edges = np.array([len(g.src) for g in graphs])
    s_off = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    e_off = np.concatenate(([0], np.cumsum(n_edges)[:-1]))
    src = np.concatenate([g.src + o for g, o in zip(graphs, s_off, strict=True)])
    weight = np.concatenate([g.weight for g in graphs])
    dst = np.concatenate([g.dst + o for g, o in zip(graphs, s_off, strict=True)])
    crossing = np.concatenate([g.crossing + o for g, o in zip(graphs, e_off, strict=True)])
    state_emis = np.empty((length, int(sizes.sum())))
    cross_pen = np.empty((length, len(crossing)))
    c_at = 0
    for f, g, o in zip(batch, graphs, s_off, strict=True):
        emis = np.full((length, f.logp.shape[1]), NEG)
        emis[:, -1] = 0.0  # crops with fewer frames start later: blank frames that cost nothing
        emis[length - len(f.logp):] = f.logp
        state_emis[:, o: o + len(g.state_cls)] = emis[:, g.state_cls]
        pen = np.full(length, NEG)
        pen[length - len(f.logp):] = np.where(f.cross, 0.0, NEG)
        cross_pen[:, c_at: c_at + len(g.crossing)] = pen[:, None]
        c_at += len(g.crossing)
    hist = np.empty((length, len(src) + 1))  # every frame's edge scores, for the way back
    hist[:, -1] = NEG
    x = np.full(int(sizes.sum()), NEG)
    x[s_off + np.array([g.start for g in graphs])] = 0.0
    into = np.empty_like(x)
    for t in range(length):
        cand = hist[t, :-1]
        np.add(x[src], weight, out=cand)
        if len(crossing):
            cand[crossing] += cross_pen[t]
        into.fill(-np.inf)  # every DP state has an incoming edge (its own loop): all are set below
        np.maximum.at(into, dst, cand)  # numpy >= 2 (the lock's 2.4): faster than maximum.reduceat here
        into += state_emis[t]
        x, into = into, x
    ends = [x[o: o + len(g.state_cls)] + g.final for g, o in zip(graphs, s_off, strict=True)]
    ranked = [_ranked(g, end, top) for g, end in zip(graphs, ends, strict=True)]
    first = np.concatenate([g.first + eo for g, eo in zip(graphs, e_off, strict=True)])
    in_count = np.concatenate([g.in_count for g in graphs])
    trail = _trace(np.concatenate([r + o for r, o in zip(ranked, s_off, strict=True)]), hist, src, first, in_count)
    model = state_emis[np.arange(length)[:, None], trail].sum(axis=0).tolist()
    out, at = [], 0
    for f, g, o, r, end in zip(batch, graphs, s_off, ranked, ends, strict=True):
        cols = (trail[:, at: at + len(r)] - o - g.n_blank).T.tolist()
        out.append(_texts(a, g, end, r, cols, model[at: at + len(r)], length - len(f.logp), top))
        at += len(r)
    return out


def _ranked(g: _Graph, end: np.ndarray, top: int) -> np.ndarray:
    """A crop's best end states (of any series or the free text), best first: enough for `top` texts, as
    several end states may spell one text."""
    ids = np.flatnonzero((g.series >= FREE) & (end > NEG / 2))
    return ids[np.argsort(-end[ids], kind="stable")[: 2 * top]]


def _trace(state: np.ndarray, hist: np.ndarray, src: np.ndarray, first: np.ndarray,
           in_count: np.ndarray) -> np.ndarray:
    """The DP state of each frame on the best path into each of `state` (group numbering), all at once:
    of a state's incoming edges (a run from `first`), the first best one."""
    length = len(hist)
    trail = np.empty((length, len(state)), np.int64)
    each = np.arange(len(state))
    span = np.arange(int(in_count.max()))
    for t in range(length - 1, -1, -1):
        trail[t] = state
        # a state's edges, then the padding column (NEG) up to the widest run
        edges = np.where(span < in_count[state][:, None], first[state][:, None] + span, len(src))
        state = src[edges[each, np.argmax(hist[t][edges], axis=1)]]
    return trail


def _texts(a: Automaton, g: _Graph, end: np.ndarray, ranked: np.ndarray, cols: list[list[int]],
           model: list[float], pad: int, top: int) -> list[Reading]:
    """One crop's traced paths (emission column per frame, -1 and below for blanks) as readings, the first
    `top` distinct texts, best first."""
    emit_cls = g.emit_cls
    found: dict[str, Reading] = {}
    for k, r in enumerate(ranked.tolist()):
        if len(found) >= top:
            break
        runs: list[tuple[int, int, int]] = []
        prev = -1
        for t, j in enumerate(cols[k]):
            if j >= 0 and j == prev:
                runs[-1] = (runs[-1][0], runs[-1][1], t + 1 - pad)
            elif j >= 0:
                runs.append((int(emit_cls[j]), t - pad, t + 1 - pad))
            prev = j
        text = "".join(a.alphabet[c] for c, _, _ in runs)
        if not text or text in found:
            continue
        s = int(g.series[r])
        total = float(end[r])
        found[text] = Reading(text, None if s == FREE else a.series[s], model[k], total - model[k], tuple(runs))
    return sorted(found.values(), key=lambda p: -(p.model + p.prior))


CLEAR = 0.5  # `clear_read`: every frame's best class at least this probable (more than all others together)


def clear_read(frames: Frames, a: Automaton) -> Reading | None:
    """The read of a crop the model is clear about, without the search: when every frame's best class is at
    least CLEAR (so another path costs the model more than the grammar's weights can give back) and the
    frames' best path spells a text of one of the automaton's series, that path is the read. None otherwise,
    and when its characters lie in more than one row of frames (a two-row plate): the search decides."""
    best = np.argmax(frames.peak, axis=1)
    if frames.peak[np.arange(len(best)), best].min() < CLEAR:
        return None
    blank = len(a.alphabet)
    runs: list[tuple[int, int, int]] = []
    prev = blank
    for t, c in enumerate(best.tolist()):
        if c != blank and c == prev:
            runs[-1] = (c, runs[-1][1], t + 1)
        elif c != blank:
            runs.append((c, t, t + 1))
        prev = c
    text = "".join(a.alphabet[c] for c, _, _ in runs)
    if not text or any(runs[0][1] < c < runs[-1][2] for c in np.flatnonzero(frames.cross).tolist()):
        return None
    prior, series = text_prior(a, text, one_row=True)
    if series is None or prior <= NEG / 2:
        return None
    model = float(frames.logp[np.arange(len(best)), best].sum())
    return Reading(text, series, model, prior, tuple(runs))


def path_chars(path: Reading, frames: Frames) -> tuple[CharRead, ...]:
    """Each character of `path` with its probability at the peak frame of its run and the two best other
    characters there (at least 1e-3)."""
    alphabet = frames.alphabet
    out = []
    for cls, first, stop in path.runs:
        rows = frames.peak[first:stop]
        row = rows[int(np.argmax(rows[:, cls]))]
        order = [int(j) for j in np.argsort(-row[: len(alphabet)])[:3] if j != cls][:2]
        out.append(CharRead(alphabet[cls], float(row[cls]),
                            tuple((alphabet[j], float(row[j])) for j in order if row[j] >= 1e-3)))
    return tuple(out)


def greedy_path(probs: np.ndarray) -> list[tuple[int, int]]:
    """(frame, class) of every character of the greedy CTC read of one plate's frames (N frames x
    classes, blank last), in reading order: runs collapse, blanks drop."""
    best = np.argmax(probs, axis=1)
    starts = np.flatnonzero((best != probs.shape[1] - 1) & np.concatenate(([True], best[1:] != best[:-1])))
    return [(int(t), int(best[t])) for t in starts]


def too_short(frames: Frames, shortest: int) -> bool:
    """Whether the frames' likeliest path (each frame's best class) reads fewer than `shortest` characters:
    a sign, a bolt or a badge, which no plate series spells; such a crop is not worth a search (junk boxes
    have the most diffuse frames, so their searches are the slowest) and reads as no text."""
    return len(greedy_path(frames.peak)) < shortest


def substitutions(top: Reading, frames: Frames, a: Automaton, limit: int) -> list[Reading]:
    """Readings that change one character of `top` to the runner-up class of its run, on the same
    alignment (the model's log probability of that path, a lower bound for the text's best path), each
    weighed by the automaton; the best `limit` of them. For candidates the series' best paths miss."""
    out = []
    for i, (cls, first, stop) in enumerate(top.runs):
        rows = frames.logp[first:stop, : len(a.alphabet)]
        total = rows.sum(axis=0)
        total[cls] = NEG
        alt = int(np.argmax(total))
        drop = float(total[alt] - rows[:, cls].sum())
        if drop < HOPELESS:
            continue
        model = top.model + drop
        text = top.text[:i] + a.alphabet[alt] + top.text[i + 1:]
        prior, series = text_prior(a, text)
        if prior > NEG / 2 and model > NEG / 2:
            runs = (*top.runs[:i], (alt, first, stop), *top.runs[i + 1:])
            out.append(Reading(text, series, model, prior, runs))
    return sorted(out, key=lambda r: -(r.model + r.prior))[:limit]


def text_scores(frames: Frames, texts: list[str]) -> np.ndarray:
    """Log probability of the best CTC path spelling each of `texts` through `frames` (the model's own,
    no grammar), all texts at once; NEG for a text no path spells."""
    return score_texts([(frames, texts)])[0]


def score_texts(jobs: list[tuple[Frames, list[str]]]) -> list[np.ndarray]:
    """`text_scores` for several crops' frames and texts in one pass over the frames (a crop with fewer
    frames starts later, behind blank frames that cost nothing: its scores are the same as alone)."""
    rows = [(k, text) for k, (_, texts) in enumerate(jobs) for text in texts]
    if not rows:
        return [np.zeros(0) for _ in jobs]
    alphabet = jobs[0][0].alphabet
    blank = len(alphabet)
    length = max(len(f.logp) for f, _ in jobs)
    logp = np.full((len(jobs), length, blank + 1), NEG)
    logp[:, :, blank] = 0.0
    for k, (f, _) in enumerate(jobs):
        logp[k, length - len(f.logp):] = f.logp
    width = 2 * max(len(text) for _, text in rows) + 1
    ext = np.full((len(rows), width), blank)
    for r, (_, text) in enumerate(rows):
        ext[r, 1: 2 * len(text): 2] = [alphabet.index(c) for c in text]
    skip = np.zeros((len(rows), width), bool)  # a character may follow the one before it directly
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    ends = np.array([2 * len(text) for _, text in rows])
    job = np.array([k for k, _ in rows])[:, None]
    score = np.full((len(rows), width), NEG)
    score[:, 0] = logp[job[:, 0], 0, blank]
    score[:, 1] = logp[job[:, 0], 0, ext[:, 1]]
    for t in range(1, length):
        best = score.copy()
        np.maximum(best[:, 1:], score[:, :-1], out=best[:, 1:])
        best[:, 2:] = np.where(skip[:, 2:], np.maximum(best[:, 2:], score[:, :-2]), best[:, 2:])
        score = best + logp[job, t, ext]
    at = np.arange(len(rows))
    found = np.maximum(score[at, ends], score[at, ends - 1])
    found[found < NEG / 2] = NEG
    bounds = np.cumsum([0] + [len(texts) for _, texts in jobs])
    return [found[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_PRIORS: OrderedDict[tuple[int, str], tuple[Automaton, tuple[float, str | None]]] = OrderedDict()
PRIOR_CACHE = 4096  # texts remembered (a vehicle pass asks for the same few texts frame after frame)


def text_prior(a: Automaton, text: str, one_row: bool = False) -> tuple[float, str | None]:
    """The automaton's weight for `text` (its best way through: a series, or free text) and the series;
    (NEG, None) if it cannot spell it. `one_row`: only ways that never open a lower row."""
    key = (id(a), text + "\n" * one_row)
    hit = _PRIORS.get(key)
    if hit is not None and hit[0] is a:
        _PRIORS.move_to_end(key)
        return hit[1]
    found = _text_prior(a, text, one_row)
    _PRIORS[key] = (a, found)
    while len(_PRIORS) > PRIOR_CACHE:
        _PRIORS.popitem(last=False)
    return found


def _text_prior(a: Automaton, text: str, one_row: bool) -> tuple[float, str | None]:
    states = {a.start: 0.0}
    codes = [a.alphabet.index(c) for c in text if c in a.alphabet]
    if len(codes) != len(text):
        return NEG, None
    arcs_of = _arcs_by_source(a)
    for c in codes:
        nxt: dict[int, float] = {}
        for s, w in states.items():
            for arc in arcs_of.get(s, ()):
                aw = a.arc_weight[arc, c]
                if aw > NEG / 2 and not (one_row and a.arc_new_row[arc]):
                    d = int(a.arc_dst[arc])
                    nxt[d] = max(nxt.get(d, NEG), w + float(aw))
        states = nxt
    best = max(((w + float(a.final[s]), s) for s, w in states.items() if a.final[s] > NEG / 2), default=None)
    if best is None:
        return NEG, None
    series = int(a.state_series[best[1]])
    return best[0], None if series == FREE else a.series[series]


_ARCS: dict[int, tuple[Automaton, dict[int, list[int]]]] = {}


def _arcs_by_source(a: Automaton) -> dict[int, list[int]]:
    hit = _ARCS.get(id(a))
    if hit is None or hit[0] is not a:
        table: dict[int, list[int]] = {}
        for i, s in enumerate(a.arc_src.tolist()):
            table.setdefault(s, []).append(i)
        hit = _ARCS[id(a)] = (a, table)
    return hit[1]
