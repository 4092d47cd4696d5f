"""US plates as cameras see them on cars: in a dealer frame, with bolts, screws and stickers, and the
state name, slogan and stacked small characters printed on the plate itself (`plates.render_plate`).

Issue 18 counted the recurring US misreads on real photos: an extra leading character from the frame, a
bolt or the state name (I, L, F, U, E, 1, 2 before the registration), a dropped first or last character.
The style `us_frame` draws exactly those distractors around an ordinary synthetic US plate, so that the
OCR learns that a frame's edge, a bolt head or a line of dealer text is not part of the registration.
"""

from __future__ import annotations

import cv2
import numpy as np

from picar.train import plates
from picar.train.plates import RenderedPlate

DEALER_TEXTS = (
    "SMITH HONDA", "CAPITOL FORD", "Proud Grandparent", "UNIVERSITY ALUMNI", "AUTONATION", "CARMAX",
    "I'd rather be fishing", "LAKESIDE TOYOTA", "www.metrochevy.com", "Go Blue!", "NAVY VETERAN",
    "PREMIER SUBARU", "BOB'S AUTO SALES", "LIVE LAUGH LOVE", "Mountain View", "WESTSIDE KIA", "ENTERPRISE",
    "HARLEY-DAVIDSON", "Support our troops", "DODGE", "NISSAN OF AUSTIN", "Coastal Mazda",
)


def _metal(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.5:  # black plastic
        v = int(rng.integers(5, 45))
        return (v, v, v)
    if rng.random() < 0.6:  # chrome
        v = int(rng.integers(150, 235))
        return (v, v, v)
    return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _bolt(canvas: np.ndarray, cx: int, cy: int, r: int, rng: np.random.Generator) -> None:
    """A bolt or screw head: a shaded disc with a slot or a cross, sometimes a coloured cap."""
    base = int(rng.integers(60, 230))
    cv2.circle(canvas, (cx, cy), r, (base, base, base), -1)
    cv2.circle(canvas, (cx - r // 4, cy - r // 4), max(1, r // 2), (min(255, base + 35),) * 3, -1)
    cv2.circle(canvas, (cx, cy), r, (max(0, base - 70),) * 3, max(1, r // 5))
    ink = (max(0, base - 110),) * 3
    t = max(1, r // 4)
    if rng.random() < 0.6:  # slot or cross
        a = rng.uniform(0, np.pi)
        dx, dy = int(r * 0.8 * np.cos(a)), int(r * 0.8 * np.sin(a))
        cv2.line(canvas, (cx - dx, cy - dy), (cx + dx, cy + dy), ink, t)
        if rng.random() < 0.5:
            cv2.line(canvas, (cx + dy, cy - dx), (cx - dy, cy + dx), ink, t)
    elif rng.random() < 0.5:  # a coloured anti-theft cap
        cv2.circle(canvas, (cx, cy), max(1, r * 4 // 5), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)


def frame_plate(plate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`plate` (BGR, RGB-ordered colours do not matter here) inside a licence plate frame: bands above and
    below with dealer text, thin sides whose inner edges read like an I or a 1, the frame's lip covering a
    little of the plate, and bolts in the upper (sometimes also the lower) holes."""
    h, w = plate.shape[:2]
    top = int(h * rng.uniform(0.04, 0.2))
    bottom = int(h * rng.uniform(0.08, 0.3))
    side = int(w * rng.uniform(0.015, 0.06))
    color = _metal(rng)
    out = np.empty((h + top + bottom, w + 2 * side, 3), np.uint8)
    out[:] = color
    lip_x, lip_y = int(w * rng.uniform(0.0, 0.03)), int(h * rng.uniform(0.0, 0.08))
    inner = plate[lip_y: h - lip_y // 2, lip_x: w - lip_x]
    out[top + lip_y: top + lip_y + inner.shape[0], side + lip_x: side + lip_x + inner.shape[1]] = inner
    if rng.random() < 0.5:  # a bevel: a lighter line along the frame's inner edge
        v = tuple(min(255, c + 60) for c in color)
        cv2.rectangle(out, (side + lip_x - 1, top + lip_y - 1),
                      (side + w - lip_x, top + lip_y + inner.shape[0]), v, 1)
    ink = (235, 235, 235) if sum(color) < 300 else (20, 20, 20)
    font = plates.DECOR_FONTS[int(rng.integers(len(plates.DECOR_FONTS)))]
    if bottom > 6 and rng.random() < 0.8:
        text = DEALER_TEXTS[int(rng.integers(len(DEALER_TEXTS)))]
        plates._draw_fitted_text(out, text, font, (side + w // 10, top + h + bottom // 6, w * 8 // 10,
                                                   max(3, bottom * 2 // 3)), ink)
    if top > 6 and rng.random() < 0.4:
        text = DEALER_TEXTS[int(rng.integers(len(DEALER_TEXTS)))]
        plates._draw_fitted_text(out, text, font, (side + w // 8, max(1, top // 8), w * 3 // 4, max(3, top * 3 // 4)),
                                 ink)
    r = max(2, int(h * rng.uniform(0.035, 0.06)))
    holes_y = [top + int(h * rng.uniform(0.08, 0.2))]
    if rng.random() < 0.35:
        holes_y.append(top + h - int(h * rng.uniform(0.08, 0.2)))
    for y in holes_y:
        for x in (side + int(w * rng.uniform(0.12, 0.3)), side + w - int(w * rng.uniform(0.12, 0.3))):
            if rng.random() < 0.9:
                _bolt(out, x, y, r, rng)
    return out


def render_us_frame(rng: np.random.Generator, text: str | None = None,
                    fonts: tuple[str, ...] = plates.PLATE_FONTS) -> RenderedPlate:
    """A synthetic US plate (state name, slogan, stickers, stacked small characters) in a frame."""
    plate = plates.render_plate(rng, "us", text=text, fonts=fonts)
    return RenderedPlate(frame_plate(plate.image, rng), plate.text, "us_frame", plate.rows)
