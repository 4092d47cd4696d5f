"""Procedural road scenes with plates on vehicle-like shapes, for detector training and the demo drive.

Drawn with OpenCV only (the plates come from picar.train.plates): sky and road with lane marks, roadside
blocks, cars as coloured bodies with windows, lights and bumpers, a plate on each; day or night (dark
frame, headlight glare, glowing lights, lit plates), motion blur and sensor noise. Plates are 40-400 px
wide in a 1920-wide frame (scaled with `width`), aspect as rendered (about 1:1 to 5:1).
"""

from __future__ import annotations

import cv2
import numpy as np

from picar.train.plates import RenderedPlate, render_plate

Box = tuple[int, int, int, int]


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    c = rng.integers(lo, hi, 3)
    return int(c[0]), int(c[1]), int(c[2])


def _background(rng: np.random.Generator, w: int, h: int, night: bool) -> tuple[np.ndarray, int]:
    img = np.empty((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.3, 0.55))
    sky_top = np.array(_colour(rng, 0, 40) if night else _colour(rng, 150, 256), np.float32)
    sky_bot = np.array(_colour(rng, 10, 70) if night else _colour(rng, 120, 240), np.float32)
    t = np.linspace(0, 1, max(horizon, 1), dtype=np.float32)[:, None]
    img[:horizon] = (sky_top * (1 - t) + sky_bot * t)[:, None, :].astype(np.uint8)
    road = int(rng.integers(15, 45)) if night else int(rng.integers(70, 150))
    img[horizon:] = (road, road, road + int(rng.integers(-5, 6)) if road > 5 else road)
    # roadside: buildings, trees, poles above the horizon
    for _ in range(int(rng.integers(3, 12))):
        bw, bh = int(rng.uniform(0.03, 0.25) * w), int(rng.uniform(0.05, 0.3) * h)
        x = int(rng.integers(-bw // 2, w))
        c = _colour(rng, 0, 60) if night else _colour(rng, 40, 220)
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon + int(0.02 * h)), c, -1)
        if rng.random() < 0.5:  # windows on the building
            wc = (60, 200, 230) if night else _colour(rng, 60, 200)
            step = max(4, bw // 6)
            for yy in range(horizon - bh + step // 2, horizon - step, step):
                for xx in range(x + step // 3, x + bw - step // 3, step):
                    if rng.random() < 0.6:
                        cv2.rectangle(img, (xx, yy), (xx + step // 2, yy + step // 2), wc, -1)
    # lane marks converging to a vanishing point
    vx = int(w * rng.uniform(0.35, 0.65))
    for lane in rng.uniform(-1.5, 1.5, int(rng.integers(2, 5))):
        x_bottom = int(vx + lane * w * 0.6)
        n = 12
        for i in range(0, n, 2):
            a, b = i / n, (i + 1) / n
            p1 = (int(vx + (x_bottom - vx) * a**2), int(horizon + (h - horizon) * a**2))
            p2 = (int(vx + (x_bottom - vx) * b**2), int(horizon + (h - horizon) * b**2))
            cv2.line(img, p1, p2, (200, 200, 200) if not night else (90, 90, 90), max(1, int(b * w / 150)))
    # distractors: signs and boards with text-like marks (plates are not the only text on the road)
    for _ in range(int(rng.integers(0, 4))):
        sw, sh = int(rng.uniform(0.02, 0.12) * w), int(rng.uniform(0.02, 0.08) * h)
        x, y = int(rng.integers(0, w - sw)), int(rng.integers(0, max(horizon, sh + 1)))
        cv2.rectangle(img, (x, y), (x + sw, y + sh), _colour(rng, 0, 256), -1)
        cv2.putText(img, str(int(rng.integers(10, 9999))), (x + 2, y + sh - 3), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.3, sh / 40), _colour(rng), max(1, sh // 15))
    blotch = rng.normal(0, 6, (h // 8 + 1, w // 8 + 1)).astype(np.float32)
    blotch = cv2.resize(blotch, (w, h), interpolation=cv2.INTER_LINEAR)
    img = cv2.add(img, cv2.merge([blotch, blotch, blotch]), dtype=cv2.CV_8U)
    return img, horizon


def _draw_car(
    img: np.ndarray, rng: np.random.Generator, cx: int, bottom: int, car_w: int, night: bool, rear: bool
) -> tuple[int, int]:
    """A car from behind (or front); returns the plate centre (x, y) on its bumper."""
    car_h = int(car_w * rng.uniform(0.6, 0.95))
    x1, x2, y1 = cx - car_w // 2, cx + car_w // 2, bottom - car_h
    body = _colour(rng, 10, 90) if night else _colour(rng, 20, 240)
    # tyres, then the body, the roof and the window
    tyre_w = max(2, car_w // 7)
    cv2.rectangle(img, (x1 + car_w // 12, bottom - car_h // 8), (x1 + car_w // 12 + tyre_w, bottom), (15, 15, 15), -1)
    cv2.rectangle(img, (x2 - car_w // 12 - tyre_w, bottom - car_h // 8), (x2 - car_w // 12, bottom), (15, 15, 15), -1)
    cv2.rectangle(img, (x1, y1 + car_h // 3), (x2, bottom - car_h // 10), body, -1)
    roof = np.array([[x1 + car_w // 10, y1 + car_h // 3], [x1 + car_w // 5, y1], [x2 - car_w // 5, y1],
                     [x2 - car_w // 10, y1 + car_h // 3]], np.int32)
    cv2.fillPoly(img, [roof], body)
    glass = _colour(rng, 0, 50) if night else _colour(rng, 30, 110)
    win = np.array([[x1 + car_w // 7, y1 + car_h // 3 - 2], [x1 + car_w // 4, y1 + car_h // 20],
                    [x2 - car_w // 4, y1 + car_h // 20], [x2 - car_w // 7, y1 + car_h // 3 - 2]], np.int32)
    cv2.fillPoly(img, [win], glass)
    # lights
    lw, lh = max(2, car_w // 6), max(2, car_h // 10)
    ly = y1 + car_h // 3 + car_h // 12
    light = (30, 30, 230) if rear else (210, 230, 240)
    if night:
        light = (80, 80, 255) if rear else (255, 255, 255)
    cv2.rectangle(img, (x1 + 3, ly), (x1 + 3 + lw, ly + lh), light, -1)
    cv2.rectangle(img, (x2 - 3 - lw, ly), (x2 - 3, ly + lh), light, -1)
    # bumper
    by = bottom - car_h // 10 - max(2, car_h // 8)
    cv2.rectangle(img, (x1, by), (x2, bottom - car_h // 10), tuple(int(c * 0.7) for c in body), -1)
    if rng.random() < 0.5:  # a badge or sticker: small text-like distractor above the plate
        cv2.putText(img, "".join(chr(int(c)) for c in rng.integers(65, 91, 3)), (cx - car_w // 10, ly + lh),
                    cv2.FONT_HERSHEY_SIMPLEX, max(0.25, car_w / 500), _colour(rng), 1)
    return cx, by - int(car_h * rng.uniform(0.02, 0.12))


def _glow(img: np.ndarray, rng: np.random.Generator, centres: list[tuple[int, int, float]]) -> None:
    """Additive Gaussian glare around lights (headlights at night), computed on a small grid."""
    h, w = img.shape[:2]
    sh, sw = max(h // 8, 1), max(w // 8, 1)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    acc = np.zeros((sh, sw), np.float32)
    for x, y, r in centres:
        rs = max(r / 8, 0.8)
        acc += np.exp(-((xx - x / 8) ** 2 + (yy - y / 8) ** 2) / (2 * rs * rs)) * float(rng.uniform(80, 255))
    big = cv2.resize(acc, (w, h), interpolation=cv2.INTER_LINEAR)
    tint = np.array([1.0, float(rng.uniform(0.85, 1.0)), float(rng.uniform(0.8, 1.0))], np.float32)
    img[:] = cv2.add(img, cv2.merge([big * tint[0], big * tint[1], big * tint[2]]), dtype=cv2.CV_8U)


def _place_plate(img: np.ndarray, plate: RenderedPlate, cx: int, cy: int, pw: int, night: bool,
                 rng: np.random.Generator) -> Box | None:
    ph0, pw0 = plate.image.shape[:2]
    ph = max(2, round(pw * ph0 / pw0))
    x, y = cx - pw // 2, cy - ph // 2
    h, w = img.shape[:2]
    if x < 0 or y < 0 or x + pw > w or y + ph > h:
        return None
    crop = cv2.resize(plate.image, (pw, ph), interpolation=cv2.INTER_AREA if pw < pw0 else cv2.INTER_LINEAR)
    if night:  # plates are lit (number-plate lamp, retro-reflective): darker than day, brighter than body
        crop = np.clip(crop.astype(np.float32) * rng.uniform(0.35, 0.9), 0, 255).astype(np.uint8)
    img[y : y + ph, x : x + pw] = crop
    return x, y, pw, ph


def _overlaps(box: Box, boxes: list[Box], margin: int) -> bool:
    x, y, w, h = box
    return any(x < bx + bw + margin and bx < x + w + margin and y < by + bh + margin and by < y + h + margin
               for bx, by, bw, bh in boxes)


def render_scene(
    rng: np.random.Generator,
    width: int = 1920,
    height: int = 1080,
    n_plates: int | None = None,
    night: bool | None = None,
) -> tuple[np.ndarray, list[tuple[RenderedPlate, tuple[int, int, int, int]]]]:
    """A BGR road frame and its plates with their boxes (x, y, w, h) in frame pixels.

    Plate widths are log-uniform over 40-400 px for a 1920-wide frame, scaled by width/1920. Cars are
    drawn far to near so nearer cars cover farther ones; a plate that would be covered is not returned.
    """
    if width < 64 or height < 64:
        raise ValueError(f"scene must be at least 64x64, got {width}x{height}")
    k = width / 1920.0
    night = bool(rng.random() < 0.4) if night is None else night
    n = int(rng.integers(1, 5)) if n_plates is None else n_plates
    img, horizon = _background(rng, width, height, night)
    wanted = sorted(float(np.exp(rng.uniform(np.log(40.0), np.log(400.0)))) * k for _ in range(n))
    placed: list[tuple[RenderedPlate, Box]] = []
    car_boxes: list[Box] = []
    lights: list[tuple[int, int, float]] = []
    for pw_f in wanted:  # small (far) first, near cars painted over them
        pw = max(4, round(pw_f))
        car_w = int(pw / rng.uniform(0.22, 0.4))
        for _attempt in range(8):
            cx = int(rng.uniform(car_w * 0.3, width - car_w * 0.3))
            depth = min(1.0, car_w / (0.9 * width))
            bottom = int(horizon + (height - horizon) * (0.15 + 0.85 * depth) * rng.uniform(0.8, 1.1))
            bottom = min(bottom, height + car_w // 6)
            box = (cx - car_w // 2, bottom - car_w, car_w, car_w)
            if not _overlaps(box, car_boxes, 0) or _attempt == 7:
                break
        rear = bool(rng.random() < 0.75)
        pcx, pcy = _draw_car(img, rng, cx, bottom, car_w, night, rear)
        plate = render_plate(rng)
        where = _place_plate(img, plate, pcx, pcy, pw, night, rng)
        # a nearer car may cover an earlier plate: drop plates this car hides
        cover = (cx - car_w // 2, bottom - car_w, car_w, car_w)
        placed = [(p, b) for p, b in placed if not _overlaps(b, [cover], 0)]
        car_boxes.append(cover)
        if where is not None:
            placed.append((plate, where))
        if night:
            r = car_w / 10
            ly = bottom - car_w // 2
            lights += [(cx - car_w // 2 + car_w // 8, ly, r), (cx + car_w // 2 - car_w // 8, ly, r)]
    if night:
        for _ in range(int(rng.integers(1, 4))):  # oncoming headlights and street lamps
            lights.append((float(rng.uniform(0, width)), float(rng.uniform(horizon * 0.5, height * 0.8)),
                           float(rng.uniform(0.01, 0.08) * width)))
        _glow(img, rng, lights)
    if rng.random() < 0.3:  # ego-motion blur, mostly horizontal
        length = int(rng.integers(3, 3 + max(2, int(12 * k))))
        kern = np.zeros((length, length), np.float32)
        kern[length // 2, :] = 1.0 / length
        img = cv2.filter2D(img, -1, kern)
    return _add_noise(img, rng, float(rng.uniform(1.0, 10.0 if night else 5.0))), placed


def _add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian sensor noise; OpenCV's generator (seeded from `rng`) is much faster than numpy's."""
    cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
    noise = np.empty(img.shape, np.float32)
    cv2.randn(noise, 0.0, sigma)
    return cv2.add(img, noise, dtype=cv2.CV_8U)
