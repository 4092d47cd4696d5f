"""Synthetic plates of the fleet's own roads, drawn from the plate grammar (`picar.vision.grammar`):
Moldova (every series: current, pre-2015, trailers, motorcycles, yellow public transport, red temporary,
government, police, border, army, diplomatic, foreigners), Transnistria, Romania and Ukraine.

The texts and their printed groups come from the grammar's series (`grammar.sample_layout`), so the
renderer and the decode share one definition of each format. A series' `style` gives its colours;
its grammar gives the band at the left (Moldova: the flag over MD, or a blue band; Transnistria: its
red-green-red flag; Romania: the EU band with RO; Ukraine: the blue-yellow flag with UA) and what is
printed between the groups (a current Moldovan plate's inspection badge between letters and digits,
the coat of arms between a pre-2015 district code and its series).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

from picar.train import plates
from picar.train.plates import PLATE_FONTS, PLATE_LIKE_FONTS, RenderedPlate
from picar.vision import grammar

# plates.STYLES name -> the grammar it draws
GRAMMAR_STYLES = {"md_series": "md", "tn_series": "transnistria", "ro_series": "ro", "ua_series": "ua"}
# Rare series (police, border, diplomatic ...) must be read too: half the draws ignore the shares.
UNIFORM_SHARE = 0.5

Color = tuple[int, int, int]
_COLOURS: dict[str, tuple[Color, Color]] = {  # series style -> (plate, characters), RGB
    "white": ((246, 246, 242), (15, 15, 15)),
    "yellow": ((250, 206, 20), (15, 15, 15)),
    "red": ((246, 246, 242), (200, 20, 25)),
    "blue": ((246, 246, 242), (20, 40, 140)),
    "black": ((20, 20, 20), (240, 240, 240)),
    "grey": ((190, 190, 185), (15, 15, 15)),
}


def pick(rng: np.random.Generator, grammar_name: str) -> grammar.Series:
    """A series of `grammar_name`, drawn by share half the time and uniformly otherwise."""
    pool = grammar.grammar_series(grammar_name)
    by_share = rng.random() >= UNIFORM_SHARE
    weights = np.array([s.share if by_share else 1.0 for s in pool], float)
    return pool[int(rng.choice(len(pool), p=weights / weights.sum()))]


def _colours(style: str, rng: np.random.Generator) -> tuple[Color, Color]:
    bg, fg = _COLOURS.get(style, _COLOURS["white"])
    d = int(rng.integers(-18, 6))
    return (tuple(int(np.clip(c + d, 0, 255)) for c in bg), fg)  # type: ignore[return-value]


def _flag(canvas: np.ndarray, box: tuple[int, int, int, int], stripes: Sequence[Color], vertical: bool,
          emblem: bool) -> None:
    x, y, w, h = box
    n = len(stripes)
    for k, col in enumerate(stripes):
        if vertical:
            canvas[y: y + h, x + k * w // n: x + (k + 1) * w // n] = col
        else:
            canvas[y + k * h // n: y + (k + 1) * h // n, x: x + w] = col
    if emblem:  # the coat of arms on the middle stripe
        cx, cy = x + w // 2, y + h // 2
        cv2.ellipse(canvas, (cx, cy), (max(1, w // 9), max(1, h // 4)), 0, 0, 360, (150, 90, 40), -1)


def _band(canvas: np.ndarray, grammar_name: str, rng: np.random.Generator, rows: int) -> int:
    """Draw the left band of `grammar_name`'s plates; returns the x where the registration may start."""
    h, w = canvas.shape[:2]
    bw = int(w * (rng.uniform(0.08, 0.11) if rows == 1 else rng.uniform(0.12, 0.16)))
    pad = max(2, int(min(w, h) * 0.05))
    white: Color = (255, 255, 255)
    if grammar_name == "ro" or (grammar_name == "md" and rng.random() < 0.25):
        canvas[:, :bw] = plates.EU_BLUE
        plates._draw_fitted_text(canvas, "RO" if grammar_name == "ro" else "MD", "dejavu/DejaVuSans-Bold.ttf",
                                 (2, int(h * 0.62), bw - 4, int(h * 0.26)), white)
        return bw + pad
    if grammar_name == "md":  # the flag over MD, in the plate's ink
        _flag(canvas, (pad, pad, bw - pad, int(h * 0.4)), ((0, 70, 160), (255, 210, 0), (200, 16, 46)), True, True)
        plates._draw_fitted_text(canvas, "MD", "dejavu/DejaVuSans-Bold.ttf",
                                 (pad, int(h * 0.55), bw - pad, int(h * 0.3)), (20, 20, 20))
        return bw + pad
    if grammar_name == "transnistria":
        if rng.random() < 0.3:  # some carry no flag
            return pad * 2
        _flag(canvas, (pad, pad, bw - pad, int(h * 0.45)), ((200, 16, 46), (0, 140, 60), (200, 16, 46)), False,
              rng.random() < 0.5)
        return bw + pad
    if grammar_name == "ua":
        canvas[: h // 2, :bw] = (0, 87, 183)
        canvas[h // 2:, :bw] = (255, 215, 0)
        plates._draw_fitted_text(canvas, "UA", "dejavu/DejaVuSans-Bold.ttf",
                                 (2, int(h * 0.62), bw - 4, int(h * 0.26)), white)
        return bw + pad
    return pad * 2


def _size(rows: int, rng: np.random.Generator) -> tuple[int, int]:
    if rows == 1:
        h = int(rng.integers(90, 120))
        return int(h * rng.uniform(4.2, 4.9)), h
    w = int(rng.integers(170, 290))
    return w, int(w * (rng.uniform(0.6, 0.8) if rows == 2 else rng.uniform(0.85, 1.05)))


def _separator(s: grammar.Series, rng: np.random.Generator) -> str:
    if s.name in ("md.current", "md.temporary", "md.public_transport"):
        return "badge" if rng.random() < 0.8 else "gap"
    if s.grammar == "md" and s.name.endswith("pre2015"):
        return "emblem" if rng.random() < 0.7 else "gap"
    return ("gap", "gap", "dash", "dot")[int(rng.integers(4))]


def _fonts(s: grammar.Series, fonts: Sequence[str], rng: np.random.Generator) -> str:
    # The plates are FE-Schrift or DIN 1451: the narrow DIN-style faces half the time when the caller allows.
    narrow = [f for f in fonts if f in PLATE_LIKE_FONTS]
    if narrow and rng.random() < 0.5:
        return narrow[int(rng.integers(len(narrow)))]
    return fonts[int(rng.integers(len(fonts)))]


def render_series(rng: np.random.Generator, s: grammar.Series, layout: Sequence[Sequence[str]] | None = None,
                  fonts: Sequence[str] = PLATE_FONTS, style: str = "") -> RenderedPlate:
    """One plate of series `s` (a random one of its texts unless `layout`, rows of printed groups, is given)."""
    rows = [list(r) for r in (layout if layout is not None else grammar.sample_layout(s, rng))]
    w, h = _size(len(rows), rng)
    bg, fg = _colours(s.style, rng)
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = bg
    plates._texture(canvas, rng)
    x0 = _band(canvas, s.grammar, rng, len(rows)) if len(rows) < 3 or rng.random() < 0.3 else max(2, w // 20)
    pad = max(2, int(min(w, h) * 0.05))
    font = _fonts(s, fonts, rng)
    stroke = float(rng.uniform(0, 1.0)) if rng.random() < 0.3 else 0.0
    sep = _separator(s, rng)
    box_w, box_y, box_h = w - x0 - pad, pad, h - 2 * pad
    if len(rows) == 1:
        ch = int(box_h * rng.uniform(0.72, 0.9))
        plates._draw_row(canvas, rows[0], font, (x0, box_y + (box_h - ch) // 2, box_w, ch), fg, rng, sep, stroke)
    else:
        gap = int(box_h * rng.uniform(0.05, 0.1))
        row_h = (box_h - gap * (len(rows) - 1)) // len(rows)
        for k, row in enumerate(rows):
            y = box_y + k * (row_h + gap)
            plates._draw_row(canvas, row, font, (x0, y, box_w, int(row_h * 0.92)), fg, rng, sep, stroke)
    if rng.random() < 0.8:  # the border stroke
        t = max(1, int(min(w, h) * rng.uniform(0.01, 0.03)))
        cv2.rectangle(canvas, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), fg, t)
    text = "".join("".join(r) for r in rows)
    style = style or next((k for k, g in GRAMMAR_STYLES.items() if g == s.grammar), s.grammar)
    return RenderedPlate(np.ascontiguousarray(canvas[..., ::-1]), text, style, len(rows), s.name)


def render_grammar_style(rng: np.random.Generator, style: str, text: str | None = None,
                         fonts: Sequence[str] = PLATE_FONTS) -> RenderedPlate:
    """A plate of the grammar behind `style` (GRAMMAR_STYLES). With `text`, that text, drawn in the
    series it fits; spaces and `/` in it give the printed groups and rows ("K BA 257"), otherwise it is
    split at letter/digit changes."""
    name = GRAMMAR_STYLES[style]
    if text is None:
        return render_series(rng, pick(rng, name), fonts=fonts)
    layout = [row.split() for row in text.upper().split("/")]
    joined = "".join("".join(r) for r in layout)
    if not joined or any(c not in plates.ALPHANUM for c in joined):
        raise ValueError(f"plate text must be non-empty A-Z0-9 (spaces and / between groups), got {text!r}")
    pool = grammar.grammar_series(name)
    if " " in text.strip() or "/" in text:  # the first series whose printed groups spell these groups
        s = next((x for x in pool if _spells(x, layout)), None)
        if s is None:
            raise ValueError(f"{text!r} is printed as no series of the {name} grammar")
        return render_series(rng, s, layout, fonts)
    fitted = grammar.fits(joined, name)
    s = next((x for x in pool if x.name == fitted), pool[0])
    return render_series(rng, s, plates._groups_from_text(joined, 2 if s.two_row else 1), fonts)


def _spells(s: grammar.Series, layout: Sequence[Sequence[str]]) -> bool:
    """Whether series `s` prints exactly these rows of groups."""
    if [len(r) for r in s.rows] != [len(r) for r in layout]:
        return False
    for row, texts in zip(s.rows, layout, strict=True):
        for group, text in zip(row, texts, strict=True):
            parts = ["(?:" + "|".join("".join("[" + "".join(sorted(cs)) + "]" for cs in opt) for opt in e.options)
                     + f"){{{e.low},{e.high}}}" for e in group]
            if not re.fullmatch("".join(parts), text):
                return False
    return True
