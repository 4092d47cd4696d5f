"""Fit the decode's priors (`picar.vision.priors`) to the labelled plate texts and store them beside the model.

    python -m picar.tools.grammar_priors --data ../shared/data [--ocr models/plate_ocr.onnx] [--scale S]

Counts come from the train splits of the labelled OCR sets (each read as its region): character
frequencies, the letter/digit steps of free text, each series' share of its grammar (the data's `share`
as a prior of weight `SHARE_WEIGHT` texts), and each region's share of texts that fit none of its series
(`auto` over all the sets together; a region list without sets of its own, such as `md`, over the sets of the
countries its grammars cover: Moldova's four over the Romanian and Ukrainian texts).
The prior's `scale` and the bonus per character read are the pair of `SCALES` x `BONUSES` that reads those
train crops best (mean exact accuracy over the sets of at least GRID_MIN crops, each read with its region and
with `auto`), unless
`--scale` and `--char-bonus` give them. Val splits are never used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from picar.paths import DEFAULT_OCR
from picar.tools.eval_data import EvalError, load_ocr_folder, read_bgr
from picar.vision.grammar import fits, grammars_for
from picar.vision.grammar_data import GRAMMARS, REGION_GRAMMARS
from picar.vision.priors import CLASSES, GrammarPriors, char_class, priors_path

# The labelled sets the priors learn from, and the region each is read as (Argentina is evaluation only:
# it has no train split here).
FIT_SETS = {"us_openalpr_seg_and_ocr": "us", "br_openalpr_train_detector": "br",
            "eu_openalpr_train_detector_eu1": "eu", "eu_openalpr_train_detector_eu2": "eu",
            "ro_dashcam_crops": "ro", "ua_nomeroff_examples": "ua"}
GRID_MIN = 100  # a set with fewer train crops (Ukraine's 19) gives its texts, not a vote on scale and bonus
SHARE_WEIGHT = 5.0  # how many texts the data's `share` guesses count as, against the labels
SCALES = (0.3, 0.5, 0.7, 1.0)
BONUSES = (0.5, 1.0, 1.5, 2.0, 3.0)
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def fit_counts(texts: dict[str, list[str]]) -> GrammarPriors:
    """Priors from labelled texts per region (scale left at 1): every count smoothed by one."""
    own: dict[str, Counter[str]] = {}  # characters per region
    start: Counter[str] = Counter()
    step: dict[str, Counter[str]] = {k: Counter() for k in CLASSES}
    per_series: Counter[str] = Counter()
    free: dict[str, list[int]] = {}
    for region, items in texts.items():
        for text in items:
            own.setdefault(region, Counter()).update(text)
            classes = [char_class(c) for c in text]
            start[classes[0]] += 1
            for a, b in zip(classes, [*classes[1:], "end"], strict=True):
                step[a][b] += 1
            name = fits(text, region)
            tally = free.setdefault(region, [0, 0])
            tally[0] += name is None
            tally[1] += 1
            if name is not None:
                per_series[name] += 1
            every = free.setdefault("auto", [0, 0])  # all labelled plates read as one worldwide region
            every[0] += fits(text, "auto") is None
            every[1] += 1
    for region, names in REGION_GRAMMARS.items():
        # a region list with no labelled set of its own: the plates of the countries it names, read as it
        theirs = [t for g in names if g in texts and g != region for t in texts[g]]
        if region not in texts and region != "auto" and len(names) > 1 and theirs:
            free[region] = [sum(fits(t, region) is None for t in theirs), len(theirs)]
    series: dict[str, float] = {}
    for g in GRAMMARS.values():
        share = sum(s.share for s in g.series)
        n = sum(per_series[s.name] for s in g.series)
        for s in g.series:
            series[s.name] = (per_series[s.name] + SHARE_WEIGHT * s.share / share) / (n + SHARE_WEIGHT)
    chars: Counter[str] = sum(own.values(), Counter())
    total = sum(chars[c] + 1 for c in ALNUM)
    base = GrammarPriors.uninformed()
    return GrammarPriors(
        scale=1.0, char_bonus=0.0, chars={c: (chars[c] + 1) / total for c in ALNUM},
        free_start={k: (start[k] + 1) / (sum(start.values()) + len(CLASSES)) for k in CLASSES},
        free_next={a: {b: (step[a][b] + 1) / (sum(step[a].values()) + 3) for b in (*CLASSES, "end")}
                   for a in CLASSES},
        free_share={**base.free_share, **{r: (nf + 1) / (n + 2) for r, (nf, n) in free.items()}},
        series=series,
        region_chars={r: {c: (n[c] + 1) / sum(n[a] + 1 for a in ALNUM) for c in ALNUM} for r, n in own.items()},
        notes={"texts": {r: len(v) for r, v in texts.items()},
               "fit_none": {r: nf for r, (nf, _) in free.items()},
               "series_counts": dict(per_series.most_common())})


def _accuracy(ocr: Any, crops: dict[str, tuple[np.ndarray, list[str], str]], priors: GrammarPriors) -> float:
    """Mean exact accuracy over the sets, each read with its region and with `auto`: as the product reads
    (a camera's region, `auto` by default; nothing in it reads with none)."""
    ocr.priors = priors
    scores = []
    for probs, texts, region in crops.values():
        for reg in (region, "auto"):
            reads = ocr.decode_probabilities(probs, reg)
            scores.append(float(np.mean([r.text == t for r, t in zip(reads, texts, strict=True)])))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picar.tools.grammar_priors", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data root (with ocr/)")
    ap.add_argument("--ocr", type=Path, default=DEFAULT_OCR, help="the OCR model the priors go beside")
    ap.add_argument("--scale", type=float, help="use this scale instead of choosing one on the train crops")
    ap.add_argument("--char-bonus", type=float, help="use this bonus instead of choosing one (needs --scale)")
    ap.add_argument("--out", type=Path, help="default: <model>.grammar.json beside --ocr")
    ap.add_argument("--rendered", type=Path, action="append", default=[], metavar="FOLDER",
                    help="rendered Moldovan plates (`picar.train.md_eval --split train`, never the eval set's seed) "
                         "that take part in choosing scale and bonus, read with region md; their texts are not counted")
    args = ap.parse_args(argv)
    try:
        items = {name: load_ocr_folder(args.data / "ocr" / name, "train") for name in FIT_SETS}
    except EvalError as exc:
        print(f"grammar_priors: {exc}", file=sys.stderr)
        return 2
    texts: dict[str, list[str]] = {}
    for name, rows in items.items():
        texts.setdefault(FIT_SETS[name], []).extend(t for _, t in rows if _usable(t))
    priors = fit_counts(texts)
    grid: dict[str, float] = {}
    scale, bonus = args.scale, args.char_bonus
    if scale is None or bonus is None:
        from picar.vision.ocr import PlateOcr

        ocr = PlateOcr(args.ocr, threads=1)
        crops = {}
        for name, rows in items.items():
            if len(rows) < GRID_MIN:
                continue
            images = [read_bgr(p) for p, _ in rows]
            crops[name] = (ocr.probabilities_of(images), [t for _, t in rows], FIT_SETS[name])
        for folder in args.rendered:
            try:
                rows = load_ocr_folder(folder, "train")
            except EvalError as exc:
                print(f"grammar_priors: {exc}", file=sys.stderr)
                return 2
            crops[f"rendered:{folder}"] = (ocr.probabilities_of([read_bgr(p) for p, _ in rows]),
                                           [t for _, t in rows], "md")
        for s in (SCALES if scale is None else (scale,)):
            for b in (BONUSES if bonus is None else (bonus,)):
                grid[f"{s} {b}"] = round(_accuracy(ocr, crops, _scaled(priors, s, b)), 4)
                print(f"scale {s} char bonus {b}: mean train exact {grid[f'{s} {b}']}", flush=True)
        best = max(grid, key=lambda k: grid[k])
        scale, bonus = (float(v) for v in best.split())
    fitted = _scaled(priors, scale, bonus)
    out = args.out or priors_path(args.ocr)
    data = fitted.to_json()
    data["fitted_on"] = [f"{name} (train, {sum(_usable(t) for _, t in rows)} texts, read as {FIT_SETS[name]})"
                         for name, rows in items.items()]
    data["command"] = "python -m picar.tools.grammar_priors " + " ".join(argv if argv is not None else sys.argv[1:])
    data["notes"] = {**fitted.notes, "scale_grid": grid, "regions_checked": list(grammars_for("auto"))}
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"priors written to {out} (scale {scale}, char bonus {bonus})")
    return 0


def _usable(text: str) -> bool:
    """A label the priors count: Latin letters and digits only (a Cyrillic-only Ukrainian series is left out)."""
    return bool(text) and all(c in ALNUM for c in text)


def _scaled(p: GrammarPriors, scale: float, bonus: float) -> GrammarPriors:
    return GrammarPriors(scale, bonus, p.chars, p.free_start, p.free_next, p.free_share, p.series, p.fitted_on,
                         p.command, p.notes, p.region_chars)


if __name__ == "__main__":
    raise SystemExit(main())
