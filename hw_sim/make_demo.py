"""Render the simulator's demo drive: a 25 s dashcam video with plates, its GPS track and a watchlist.

    python -m hw_sim.make_demo --out hw_sim/demo --seed 7

The scene is a small 3D world seen through a pinhole camera 1.35 m above the road: a two-lane
boulevard each way, kerbs, facades, lamp posts, and nine vehicles whose plates come from
picar.train.plates.render_plate. Every vehicle follows key poses relative to the patrol car
(lateral X, distance Z, yaw), so plates grow, cross lanes, get hidden and revealed the way they do
on a real road. The patrol car brakes for a red light and drives on; the last seconds are graded
as dusk (tail lights, lit plates, glare). Mild zoom/motion blur, sensor noise and a JPEG pass make
the frames look like a camera's, and the whole drive is deterministic for a seed.

Outputs in --out: drive.mp4, track.csv, watchlist.csv, expected.json (what each plate is, where
and when it is visible, which entry it should hit). Needs pillow and the Debian TTF fonts
(the `train` extra); the outputs are committed, so nothing else needs them.

    python -m hw_sim.make_demo --read [--detector D.onnx --ocr O.onnx]

runs a detector and an OCR over the committed drive and prints, per plate, how often it was found
and read (read_drive() does the same for the tests).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.train.plates import RenderedPlate, render_plate

W, H, FPS, DURATION_S = 1280, 720, 15, 25.0
N_FRAMES = int(DURATION_S * FPS)
FOCAL_PX = 1400.0  # a mildly long lens, as ALPR dashcams use: 47 deg horizontal field of view
CAM_HEIGHT_M = 1.35
HORIZON_Y = 0.40 * H
Z_NEAR = 0.4
SHUTTER_S = 1 / 250  # plate cameras use short shutters: vehicles blur only a little
STREET_BLUR_S = 1 / 60  # the street gets the zoom blur of a longer exposure (and keeps the video small)
MIN_VISIBLE_PX = 40  # a plate narrower than this is not counted as visible in expected.json
JPEG_QUALITY = 90
NOISE_SIGMA = (0.3, 0.6)  # sensor noise by day and at dusk
BACKGROUND_BLUR = 3.0  # also what keeps the video under 4 MB: facades sliding past cost the most bits

# Bulevardul Stefan cel Mare si Sfant, Chisinau, between the Parliament and the Cathedral Park,
# driving south-east.
START_LAT, START_LON, HEADING_DEG = 47.02600, 28.82800, 122.0

Color = tuple[int, int, int]  # BGR
Glow = tuple[float, float, float, float, tuple[float, float, float]]  # x, y, radius px, depth m, BGR tint
WHITE_GLOW, RED_GLOW = (0.85, 0.95, 1.0), (0.35, 0.35, 1.0)
Key = tuple[float, float, float, float]  # t_s, X m (right positive), Z m (ahead), yaw deg


# --------------------------------------------------------------------------- patrol car motion


def ego_speed_kmh(t: float) -> float:
    """The patrol car's speed: cruise, brake for a red light, wait, pull away."""
    if t < 7.5:
        return 46.0
    if t < 11.5:
        return 46.0 * (11.5 - t) / 4.0
    if t < 13.5:
        return 0.0
    if t < 17.0:
        return 40.0 * (t - 13.5) / 3.5
    return 40.0 + 4.0 * min(1.0, (t - 17.0) / 8.0)


def ego_distance_m(t: float, step: float = 0.01) -> float:
    """Metres driven since t=0 (trapezoid integral of ego_speed_kmh)."""
    n = max(1, int(t / step))
    ts = np.linspace(0.0, t, n + 1)
    v = np.array([ego_speed_kmh(float(x)) for x in ts]) / 3.6
    return float(np.sum((v[1:] + v[:-1]) * 0.5 * np.diff(ts)))


# --------------------------------------------------------------------------- the vehicles


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the drive: its plate, body and key poses relative to the patrol car."""

    name: str
    style: str
    text: str
    kind: str  # sedan, suv, van
    body: Color
    keys: tuple[Key, ...]
    facing: str = "rear"  # rear: we see its back; front: oncoming
    plate_seed: int = 0  # picks the plate's font and furniture among the style's variations
    groups: str = ""  # the printed groups ("K BA 257"), for a plate-grammar style; default: from the text


PLATE_WIDTH_M = {"us": 0.305, "br_mercosur": 0.40, "eu_square": 0.28, "moto": 0.20}  # others 0.52 m

VEHICLES: tuple[Vehicle, ...] = (
    Vehicle("v1", "md_series", "CDK418", "sedan", (40, 40, 150),
            ((0.0, 0.2, 17.0, -2), (2.6, 0.2, 5.2, -2), (3.4, 1.6, 4.5, 9), (4.2, 3.4, 4.2, 2)),
            plate_seed=3),  # the current series' look: the flag over MD, the inspection badge
    Vehicle("v2", "de", "BMK4021", "suv", (150, 150, 150),
            ((3.4, 3.0, 19.0, 3), (6.4, 3.0, 7.0, 2))),
    Vehicle("v3", "ro", "CJ07BOX", "sedan", (60, 120, 40),
            ((4.2, 0.2, 18.0, 1.5), (6.9, 0.2, 5.4, 1.5), (7.6, 1.6, 4.8, 10), (8.4, 3.4, 4.4, 2))),
    Vehicle("v4", "ua_series", "BH4729KA", "sedan", (200, 200, 205),
            ((6.5, 0.1, 19.5, -1), (11.5, 0.1, 4.4, -1), (13.7, 0.1, 4.4, -1), (15.5, 0.1, 9.0, 0),
             (17.0, 0.1, 24.0, 0))),
    Vehicle("v5", "br_mercosur", "RIO2A18", "sedan", (30, 30, 30),
            ((11.4, -3.0, 17.0, -2), (13.5, -3.0, 7.6, -2), (14.0, -3.0, 4.0, -2)), facing="front"),
    Vehicle("v6", "pl", "WX48213", "suv", (120, 60, 20),
            ((13.8, 3.1, 6.6, 2), (16.4, 3.1, 17.0, 1))),
    Vehicle("v7", "us", "7KTR214", "van", (210, 210, 215),
            ((17.2, 3.4, 12.0, 0), (18.2, 0.2, 10.5, -8), (18.6, 0.2, 9.6, -1.5), (20.6, 0.2, 4.2, -1.5),
             (21.4, 1.7, 3.8, 10), (22.2, 3.4, 3.6, 2))),
    Vehicle("v8", "eu_square", "TL62HEX", "sedan", (20, 90, 160),
            ((20.6, 0.2, 11.5, 1), (23.4, 0.2, 3.7, 1), (25.2, 0.2, 3.5, 1))),
    Vehicle("v9", "md_series", "KBA257", "sedan", (90, 90, 90),
            ((18.4, 3.0, 18.5, 2), (24.9, 3.0, 6.0, 2)), plate_seed=1,
            groups="K BA 257"),  # pre-2015: Chisinau's K, the series, the digits, the arms between
)

# (plate, list, priority, covert, description, reason, notes, source, vehicle, how it hits): the list of a
# Moldovan HQ, its texts in Romanian and Russian (issue 19).
HIT_ENTRIES: tuple[tuple[str, str, int, bool, str, str, str, str, str, str], ...] = (
    ("CDK418", "stolen_vehicle", 1, False, "Dacia Logan, roșu închis", "furat 2026-11-20, Buiucani",
     "", "IGP Moldova", "v1", "exact"),
    ("BH4729KA", "amber", 1, False, "седан серебристый, номера Украины", "пропал ребёнок, 7 лет, видели в машине",
     "abordare cu prudență", "Interpol, notificare galbenă", "v4", "exact"),
    ("CJ07B0X", "stolen_vehicle", 2, False, "autoturism verde, numere RO", "furat în Cluj-Napoca",
     "listat cu zero; pe placă este litera O", "Poliția Română prin SIS", "v3", "confusable"),
    ("BMK4021", "surveillance", 3, True, "SUV gri, numere DE", "subiectul unei investigații în curs",
     "nu opriți, raportați doar poziția", "IGP Moldova, DIC", "v2", "exact"),
    ("KBA257", "stolen_vehicle", 2, False, "ВАЗ-2107, серый", "угон 2026-11-28, Бельцы",
     "", "IGP Moldova", "v9", "exact"),
)
# How a listed plate is typed in the CSV when not as the OCR reads it: a Russian-speaking operator's
# Cyrillic К В А with spaces, which the importer turns into KBA257.
LISTED_AS = {"KBA257": "К ВА 257"}
DECOY_REGIONS = ("MD", "RO", "UA", "D", "PL", "US", "BR", "")
WATCHLIST_FIELDS = ("plate", "region", "list", "priority", "covert", "effective", "expires",
                    "description", "reason", "notes", "source")
# The demo's list is a Moldovan HQ's: its columns in Romanian (picar.watchlist.io.HEADER_ALIASES).
WATCHLIST_HEADER = ("Număr de înmatriculare", "Regiune", "Listă", "Prioritate", "Secret", "Valabil de la",
                    "Valabil până la", "Descriere", "Motiv", "Note", "Sursa")


def _shade(c: Color, k: float) -> Color:
    return int(c[0] * k), int(c[1] * k), int(c[2] * k)


def _smooth(a: float) -> float:
    return a * a * (3 - 2 * a)


def pose_at(v: Vehicle, t: float) -> tuple[float, float, float] | None:
    """(X, Z, yaw rad) of a vehicle at t; Z interpolates linearly (steady speeds), X and yaw smoothly."""
    keys = v.keys
    if t < keys[0][0] or t > keys[-1][0]:
        return None
    for (t0, x0, z0, y0), (t1, x1, z1, y1) in zip(keys, keys[1:], strict=False):
        if t0 <= t <= t1:
            a = (t - t0) / (t1 - t0)
            s = _smooth(a)
            return x0 + (x1 - x0) * s, z0 + (z1 - z0) * a, math.radians(y0 + (y1 - y0) * s)
    t0, x0, z0, y0 = keys[-1]
    return x0, z0, math.radians(y0)


# --------------------------------------------------------------------------- camera and drawing


CAM_YAW_DEG, CAM_ROLL_DEG = 1.2, 0.7  # the camera is mounted a little off-axis: plates show keystone


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at the origin looking along +Z, turned by CAM_YAW_DEG and rolled by CAM_ROLL_DEG;
    cy is the horizon row (pitch shake moves it)."""

    cx: float = W / 2
    cy: float = HORIZON_Y

    def rotate(self, pts: np.ndarray) -> np.ndarray:
        """Road coordinates (X right, Y up, Z ahead) -> camera coordinates (yaw only)."""
        a = math.radians(CAM_YAW_DEG)
        out = pts.astype(np.float64).copy()
        out[:, 0] = pts[:, 0] * math.cos(a) - pts[:, 2] * math.sin(a)
        out[:, 2] = pts[:, 0] * math.sin(a) + pts[:, 2] * math.cos(a)
        return out

    def project_cam(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) camera coordinates -> (N, 2) pixel coordinates (with the roll)."""
        z = np.maximum(pts[:, 2], 1e-3)
        u = FOCAL_PX * pts[:, 0] / z
        v = FOCAL_PX * (CAM_HEIGHT_M - pts[:, 1]) / z
        r = math.radians(CAM_ROLL_DEG)
        return np.stack([self.cx + u * math.cos(r) - v * math.sin(r),
                         self.cy + u * math.sin(r) + v * math.cos(r)], axis=1)

    def project(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) road points in front of the camera -> (N, 2) pixel coordinates."""
        return self.project_cam(self.rotate(pts))


def clip_near(poly: np.ndarray, z_near: float = Z_NEAR) -> np.ndarray:
    """Clip a 3D polygon (N, 3) to Z >= z_near (one Sutherland-Hodgman pass)."""
    out: list[np.ndarray] = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        ina, inb = a[2] >= z_near, b[2] >= z_near
        if ina:
            out.append(a)
        if ina != inb:
            f = (z_near - a[2]) / (b[2] - a[2])
            out.append(a + (b - a) * f)
    return np.array(out, np.float64).reshape(-1, 3)


class Canvas:
    """A BGR image plus a per-pixel light gain (scene light for surfaces, more for lamps)."""

    def __init__(self, w: int, h: int, light: float) -> None:
        self.img: np.ndarray = np.zeros((h, w, 3), np.uint8)
        self.gain: np.ndarray = np.full((h, w), light, np.float32)
        self.light = light

    def fill(self, cam: Camera, poly3d: np.ndarray, color: Color, gain: float | None = None,
             offset: tuple[int, int] = (0, 0)) -> np.ndarray | None:
        """Fill a 3D polygon; returns its pixel polygon (None when behind the camera)."""
        poly = clip_near(cam.rotate(poly3d))
        if len(poly) < 3:
            return None
        px = cam.project_cam(poly) - np.array(offset, np.float64)
        pts = np.round(px * 16).astype(np.int32)  # 4 fractional bits: sub-pixel edges
        cv2.fillPoly(self.img, [pts], color, cv2.LINE_AA, shift=4)
        cv2.fillPoly(self.gain, [pts], float(self.light if gain is None else gain), cv2.LINE_AA, shift=4)
        return px


def _quad_x(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    """A rectangle facing the camera (constant Z)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)


def _quad_side(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """A rectangle along the road (constant X)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], np.float64)


def _ground(x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> np.ndarray:
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


# --------------------------------------------------------------------------- the street


@dataclass(frozen=True)
class Building:
    side: int  # +1 right, -1 left
    z0: float
    length: float
    height: float
    color: Color
    lit: tuple[bool, ...]  # which windows are lit at dusk


def make_street(rng: np.random.Generator, length_m: float) -> list[Building]:
    """Facades along both sides of the boulevard, from behind the start to past the end."""
    out: list[Building] = []
    for side in (1, -1):
        z = -10.0
        while z < length_m:
            ln = float(rng.uniform(14, 34))
            base = float(rng.uniform(120, 215))  # plaster: beige, cream, grey, a few pastel
            tint = rng.uniform(-18, 18, 3)
            warm = (int(base * 0.86 + tint[0]), int(base * 0.95 + tint[1]), int(base + tint[2]))
            lit = tuple(bool(v) for v in rng.random(60) < 0.2)
            out.append(Building(side, z, ln, float(rng.uniform(9, 22)), warm, lit))
            z += ln + float(rng.uniform(0, 6))
    return out


ROAD_RIGHT, ROAD_LEFT = 5.3, -8.9  # kerbs; lanes: ours X=0 and 3.5, oncoming -3.6 and -7.1
KERB_W = 3.6
FACADE_X = {1: ROAD_RIGHT + KERB_W, -1: ROAD_LEFT - KERB_W}
LIGHT_STOP_Z = 9.5  # the stop line is this far ahead of where the patrol car stops


def draw_street(cv: Canvas, cam: Camera, s: float, buildings: Sequence[Building], dusk: float,
                texture: np.ndarray, ego_stop_s: float, t: float) -> list[Glow]:
    """Sky, road, markings, kerbs, facades, lamp posts, traffic light; returns lamp glow centres."""
    h, w = cv.img.shape[:2]
    hy = int(round(cam.cy))
    top_day, hor_day = np.array((235, 190, 140), np.float32), np.array((235, 220, 205), np.float32)
    top_dusk, hor_dusk = np.array((95, 55, 40), np.float32), np.array((100, 150, 225), np.float32)
    top = top_day * (1 - dusk) + top_dusk * dusk
    hor = hor_day * (1 - dusk) + hor_dusk * dusk
    ramp = np.linspace(0, 1, max(hy, 1), dtype=np.float32)[:, None]
    cv.img[:hy] = (top * (1 - ramp) + hor * ramp)[:, None, :].astype(np.uint8)
    cv.gain[:hy] = 1.0
    asphalt = np.clip(texture[hy:] + 92.0, 0, 255).astype(np.uint8)
    cv.img[hy:] = asphalt[..., None]
    cv.gain[hy:] = cv.light
    far = 400.0
    # kerbs and pavements
    for x0, x1 in ((ROAD_RIGHT, FACADE_X[1]), (FACADE_X[-1], ROAD_LEFT)):
        cv.fill(cam, _ground(x0, x1, Z_NEAR, far, 0.12), (150, 155, 160))
        xk = x0 if x0 in (ROAD_RIGHT, ROAD_LEFT) else x1
        cv.fill(cam, _quad_side(xk, 0.0, 0.12, Z_NEAR, far), (185, 190, 195))
    # lane marks: dashed between our lanes and between the oncoming lanes, double solid in the middle
    for xm in (1.75, -5.35):
        z = -(s % 12.0)
        while z < 120:
            if z + 3 > Z_NEAR:
                cv.fill(cam, _ground(xm - 0.07, xm + 0.07, max(z, Z_NEAR), z + 3.0, 0.005), (225, 225, 225))
            z += 12.0
    for xm in (-1.7, -1.9):
        cv.fill(cam, _ground(xm - 0.06, xm + 0.06, Z_NEAR, 150.0, 0.005), (225, 225, 225))
    for xm in (ROAD_RIGHT - 0.25, ROAD_LEFT + 0.25):
        cv.fill(cam, _ground(xm - 0.07, xm + 0.07, Z_NEAR, 150.0, 0.005), (210, 210, 210))
    # stop line of the red light
    zs = ego_stop_s + LIGHT_STOP_Z - s
    if zs > Z_NEAR:
        cv.fill(cam, _ground(-1.6, ROAD_RIGHT - 0.3, zs, zs + 0.45, 0.006), (230, 230, 230))
    # facades, far first
    glows: list[Glow] = []
    for b in sorted(buildings, key=lambda b: -(b.z0 - s)):
        z0, z1 = b.z0 - s, b.z0 + b.length - s
        if z1 < Z_NEAR or z0 > far:
            continue
        x = FACADE_X[b.side]
        cv.fill(cam, _quad_side(x, 0.0, b.height, z0, z1), b.color)
        shade = _shade(b.color, 0.75)
        cv.fill(cam, _quad_x(x, x + 8 * b.side, 0.0, b.height, z0), shade)  # gable end toward us
        cv.fill(cam, _quad_side(x, 0.0, 3.2, z0, z1), _shade(b.color, 0.6))  # shopfronts
        if z0 < 80:
            floors = int((b.height - 4) / 3.2)
            cols = int(b.length / 3.5)
            k = 0
            for fl in range(floors):
                for cl in range(cols):
                    y0 = 4.0 + fl * 3.2
                    za, zb = z0 + 1.0 + cl * 3.5, z0 + 2.6 + cl * 3.5
                    if zb < Z_NEAR + 0.5:
                        continue
                    lit = dusk > 0.3 and b.lit[k % len(b.lit)]
                    k += 1
                    color = (80, 160, 200) if lit else _shade(b.color, 0.62)
                    cv.fill(cam, _quad_side(x - 0.02 * b.side, y0, y0 + 1.6, max(za, Z_NEAR + 0.5), zb), color,
                            gain=1.0 if lit else None)
    # lamp posts on the right pavement every 30 m
    z = 15.0 - (s % 30.0)
    while z < 150:
        if z > 1.0:
            xl = ROAD_RIGHT + 0.6
            cv.fill(cam, _quad_x(xl - 0.08, xl + 0.08, 0.0, 8.0, z), (70, 70, 70))
            cv.fill(cam, _quad_x(xl - 1.4, xl + 0.08, 7.9, 8.05, z), (70, 70, 70))
            head = cv.fill(cam, _quad_x(xl - 1.5, xl - 0.9, 7.75, 7.9, z), (235, 245, 255) if dusk > 0.3
                           else (120, 120, 120), gain=1.0 if dusk > 0.3 else None)
            if head is not None and dusk > 0.3:
                c = head.mean(axis=0)
                glows.append((float(c[0]), float(c[1]), FOCAL_PX * 0.5 / z, z, WHITE_GLOW))
        z += 30.0
    # the traffic light: a signal head on a mast arm over our lanes, across the junction
    zl = zs + 14.0
    if zl > 1.0:
        xp = ROAD_RIGHT + 0.4
        cv.fill(cam, _quad_x(xp - 0.1, xp + 0.1, 0.0, 6.0, zl), (60, 60, 60))
        cv.fill(cam, _quad_x(1.2, xp, 5.85, 6.0, zl), (60, 60, 60))
        cv.fill(cam, _quad_x(1.55, 1.95, 4.75, 5.85, zl), (25, 25, 25))
        red = t < 13.3
        for i, (col, on) in enumerate((((40, 40, 255), red), ((40, 200, 255), False), ((80, 230, 60), not red))):
            y = 5.75 - i * 0.34
            cv.fill(cam, _quad_x(1.62, 1.88, y - 0.26, y, zl - 0.01), col if on else (40, 40, 40),
                    gain=1.3 if on else None)
    return glows


# --------------------------------------------------------------------------- vehicles


@dataclass(frozen=True)
class Body:
    width: float
    height: float
    length: float
    belt: float  # top of the boot / bonnet
    deck: float  # length of the boot lid before the rear window starts


BODIES = {
    "sedan": Body(1.78, 1.45, 4.5, 0.98, 0.75),
    "suv": Body(1.88, 1.70, 4.6, 1.05, 0.15),
    "van": Body(1.98, 2.05, 5.0, 1.10, 0.0),
}


def _car_points(local: np.ndarray, x: float, z: float, yaw: float) -> np.ndarray:
    """Car-local (lx right, y up, lz forward from the face we see) -> camera coordinates."""
    c, s = math.cos(yaw), math.sin(yaw)
    out = local.astype(np.float64).copy()
    out[:, 0] = x + local[:, 0] * c + local[:, 2] * s
    out[:, 2] = z - local[:, 0] * s + local[:, 2] * c
    return out


@dataclass(frozen=True)
class Placed:
    """Where a vehicle and its plate landed in one frame (frame pixels)."""

    car_box: tuple[int, int, int, int]  # x0, y0, x1, y1
    plate_quad: np.ndarray  # (4, 2) tl, tr, br, bl
    z: float


def plate_quad_3d(v: Vehicle, plate: RenderedPlate) -> np.ndarray:
    """The plate's corners in car-local metres (tl, tr, br, bl), on the face toward the camera."""
    pw = PLATE_WIDTH_M.get(v.style, 0.52)
    ph = pw * plate.image.shape[0] / plate.image.shape[1]
    yc = 0.52 if v.facing == "rear" else 0.42
    return np.array([[-pw / 2, yc + ph / 2, -0.02], [pw / 2, yc + ph / 2, -0.02],
                     [pw / 2, yc - ph / 2, -0.02], [-pw / 2, yc - ph / 2, -0.02]], np.float64)


def draw_vehicle(cv: Canvas, cam: Camera, v: Vehicle, plate: RenderedPlate, pose: tuple[float, float, float],
                 blur_px: tuple[float, float], dusk: float) -> tuple[Placed, list[Glow]]:
    """Draw a vehicle on its own layer (blurred by its own image motion), composite it; return where
    it and its plate landed and its light glow centres."""
    x, z, yaw = pose
    b = BODIES[v.kind]
    hw = b.width / 2
    pts = lambda arr: _car_points(np.asarray(arr, np.float64), x, z, yaw)  # noqa: E731
    outline = pts([[sx * hw, sy, sz] for sx in (-1, 1) for sy in (0.0, b.height) for sz in (0.0, b.length)])
    pix = cam.project(outline)
    pad = 12
    x0, y0 = int(math.floor(pix[:, 0].min())) - pad, int(math.floor(pix[:, 1].min())) - pad
    x1, y1 = int(math.ceil(pix[:, 0].max())) + pad, int(math.ceil(pix[:, 1].max())) + pad
    layer = Canvas(x1 - x0, y1 - y0, cv.light)
    mask: np.ndarray = np.zeros((y1 - y0, x1 - x0), np.float32)
    off = (x0, y0)
    body = v.body
    dark = _shade(body, 0.55)
    mid = _shade(body, 0.8)
    glass = (55, 45, 40)
    glows: list[Glow] = []
    polys: list[np.ndarray] = []

    def fill(arr: Sequence[Sequence[float]], color: Color, gain: float | None = None) -> np.ndarray | None:
        p = layer.fill(cam, pts(arr), color, gain, off)
        if p is not None:
            polys.append(p)
        return p

    # shadow on the road
    fill([[-hw - 0.05, 0.01, 0.05], [hw + 0.05, 0.01, 0.05], [hw + 0.05, 0.01, b.length], [-hw - 0.05, 0.01, b.length]],
         (45, 45, 48))
    # the side toward the camera: tyres, body, windows
    side = -1.0 if x > 0 else 1.0
    sx = side * hw
    if abs(x) > hw * 0.6:
        fill([[sx, 0.25, 0], [sx, 0.25, b.length], [sx, b.belt, b.length], [sx, b.belt, 0]], mid)
        cab0, cab1 = b.deck + 0.4, b.length - 1.0
        fill([[sx * 0.9, b.belt, cab0], [sx * 0.9, b.belt, cab1], [sx * 0.85, b.height, cab1 - 0.3],
              [sx * 0.85, b.height, cab0 + 0.2]], mid)
        fill([[sx * 0.9, b.belt + 0.08, cab0 + 0.2], [sx * 0.9, b.belt + 0.08, cab1 - 0.2],
              [sx * 0.86, b.height - 0.08, cab1 - 0.4], [sx * 0.86, b.height - 0.08, cab0 + 0.35]], glass)
        for wz in (0.8, b.length - 0.9):
            fill([[sx, 0.0, wz - 0.33], [sx, 0.0, wz + 0.33], [sx, 0.62, wz + 0.33], [sx, 0.62, wz - 0.33]],
                 (20, 20, 20))
    # boot lid (or bonnet) and the sloping rear window: the camera is higher than the belt line
    if b.deck > 0:
        fill([[-hw, b.belt, 0], [hw, b.belt, 0], [hw * 0.95, b.belt, b.deck], [-hw * 0.95, b.belt, b.deck]], body)
    top_z = b.deck + (0.55 if v.kind == "sedan" else 0.15)
    fill([[-hw * 0.92, b.belt, b.deck], [hw * 0.92, b.belt, b.deck], [hw * 0.8, b.height, top_z],
          [-hw * 0.8, b.height, top_z]], mid)
    fill([[-hw * 0.82, b.belt + 0.07, b.deck + 0.06], [hw * 0.82, b.belt + 0.07, b.deck + 0.06],
          [hw * 0.72, b.height - 0.07, top_z - 0.05], [-hw * 0.72, b.height - 0.07, top_z - 0.05]], glass)
    # the face we see: tyres below, body, bumper, lights
    for tx in (-hw + 0.12, hw - 0.42):
        fill([[tx, 0.0, 0.3], [tx + 0.3, 0.0, 0.3], [tx + 0.3, 0.4, 0.3], [tx, 0.4, 0.3]], (18, 18, 18))
    fill([[-hw, 0.25, 0], [hw, 0.25, 0], [hw, b.belt, 0], [-hw, b.belt, 0]], body)
    fill([[-hw, 0.22, -0.05], [hw, 0.22, -0.05], [hw, 0.42, -0.05], [-hw, 0.42, -0.05]], dark)
    if v.facing == "front":
        fill([[-0.45, 0.62, -0.01], [0.45, 0.62, -0.01], [0.45, 0.85, -0.01], [-0.45, 0.85, -0.01]], (35, 35, 35))
    lit = dusk > 0.3
    for lx in (-hw + 0.05, hw - 0.45):
        if v.facing == "rear":
            col: Color = (50, 50, 255) if lit else (40, 40, 190)
        else:
            col = (235, 245, 255) if lit else (200, 205, 210)
        p = fill([[lx, 0.72, -0.01], [lx + 0.4, 0.72, -0.01], [lx + 0.4, 0.9, -0.01], [lx, 0.9, -0.01]], col,
                 gain=1.4 if lit else None)
        if p is not None and lit:
            c = p.mean(axis=0) + np.array(off)
            front = v.facing == "front"
            glows.append((float(c[0]), float(c[1]), FOCAL_PX * (0.35 if front else 0.18) / z, z,
                          WHITE_GLOW if front else RED_GLOW))
    # the plate, warped from the rendered image; lit by its lamp at dusk
    quad = cam.project(pts(plate_quad_3d(v, plate)))
    qw = float(np.linalg.norm(quad[1] - quad[0]))
    img = plate.image
    scale = min(1.0, 1.5 * qw / img.shape[1])
    if scale < 1.0:  # shrink with area averaging first: a warp alone would alias the glyphs
        img = cv2.resize(img, (max(2, round(img.shape[1] * scale)), max(2, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    ih, iw = img.shape[:2]
    src = np.array([[0, 0], [iw, 0], [iw, ih], [0, ih]], np.float32)
    m = cv2.getPerspectiveTransform(src, (quad - np.array(off)).astype(np.float32))
    lw, lh = x1 - x0, y1 - y0
    warped = cv2.warpPerspective(img, m, (lw, lh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pmask = cv2.warpPerspective(np.ones((ih, iw), np.float32), m, (lw, lh), flags=cv2.INTER_LINEAR)
    layer.img = (layer.img * (1 - pmask[..., None]) + warped * pmask[..., None]).astype(np.uint8)
    plate_gain = max(cv.light, 0.82)
    layer.gain = layer.gain * (1 - pmask) + plate_gain * pmask
    for p in polys:
        cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    mask = np.maximum(mask, pmask)
    # motion blur along this vehicle's image motion during the exposure
    length = float(math.hypot(*blur_px))
    if length >= 1.0:
        k = int(math.ceil(length)) | 1
        kern = np.zeros((k, k), np.float32)
        c0 = k // 2
        cv2.line(kern, (int(round(c0 - blur_px[0] / 2)), int(round(c0 - blur_px[1] / 2))),
                 (int(round(c0 + blur_px[0] / 2)), int(round(c0 + blur_px[1] / 2))), 1.0, 1)
        kern /= kern.sum()
        layer.img = cv2.filter2D(layer.img, -1, kern)
        layer.gain = cv2.filter2D(layer.gain, -1, kern)
        mask = cv2.filter2D(mask, -1, kern)
    # composite, clipped to the frame
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(cv.img.shape[1], x1), min(cv.img.shape[0], y1)
    if fx1 > fx0 and fy1 > fy0:
        sl = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
        a = mask[sl]
        dst = cv.img[fy0:fy1, fx0:fx1].astype(np.float32)
        cv.img[fy0:fy1, fx0:fx1] = (dst * (1 - a[..., None]) + layer.img[sl] * a[..., None]).astype(np.uint8)
        cv.gain[fy0:fy1, fx0:fx1] = cv.gain[fy0:fy1, fx0:fx1] * (1 - a) + layer.gain[sl] * a
    placed = Placed((max(0, x0 + pad), max(0, y0 + pad), min(W, x1 - pad), min(H, y1 - pad)), quad, z)
    return placed, glows


# --------------------------------------------------------------------------- the frame


def _glow(img: np.ndarray, glows: Sequence[Glow], placed: dict[str, Placed], strength: float) -> np.ndarray:
    """Additive glare around lamps, computed at 1/8 resolution; a lamp behind a nearer vehicle has none."""
    h, w = img.shape[:2]
    sh, sw = h // 8, w // 8
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    acc = np.zeros((sh, sw, 3), np.float32)
    for x, y, r, z, tint in glows:
        if any(p.z < z - 0.5 and p.car_box[0] <= x <= p.car_box[2] and p.car_box[1] <= y <= p.car_box[3]
               for p in placed.values()):
            continue
        rs = max(r / 8, 0.7)
        acc += np.exp(-((xx - x / 8) ** 2 + (yy - y / 8) ** 2) / (2 * rs * rs))[..., None] * np.array(tint, np.float32)
    big = cv2.resize(acc, (w, h), interpolation=cv2.INTER_LINEAR) * (110.0 * strength)
    return np.clip(img.astype(np.float32) + big, 0, 255).astype(np.uint8)


DUSK_FROM_S, DUSK_RAMP_S = 17.0, 0.2  # the camera switches to its low-light profile (a slow ramp costs many bits)


def dusk_at(t: float) -> float:
    """0 = day, 1 = dusk; the grade changes over DUSK_RAMP_S from DUSK_FROM_S."""
    return min(1.0, max(0.0, (t - DUSK_FROM_S) / DUSK_RAMP_S))


@dataclass(frozen=True)
class World:
    plates: dict[str, RenderedPlate]
    buildings: list[Building]
    texture: np.ndarray
    ego_stop_s: float
    shake: np.ndarray  # horizon offset per frame, px


def make_world(seed: int) -> World:
    """Everything random about the drive, fixed by the seed."""
    plates: dict[str, RenderedPlate] = {}
    for i, v in enumerate(VEHICLES):
        rng = np.random.default_rng([seed, i, v.plate_seed])
        plate = render_plate(rng, v.style, v.groups or v.text)
        if plate.text != v.text:
            raise RuntimeError(f"{v.name}: render_plate drew {plate.text!r}, asked for {v.text!r}")
        plates[v.name] = plate
    rng = np.random.default_rng([seed, 1000])
    buildings = make_street(rng, 400.0)
    tex = rng.normal(0, 1, (H // 4, W // 4)).astype(np.float32)
    tex = cv2.resize(tex, (W, H), interpolation=cv2.INTER_LINEAR) * 5.0
    tex += rng.normal(0, 2.0, (H, W)).astype(np.float32)
    shake = np.convolve(rng.normal(0, 1.0, N_FRAMES + 8), np.ones(5) / 5, mode="same")[:N_FRAMES] * 2.0
    return World(plates, buildings, tex, ego_distance_m(11.5), shake)


def render_frame(world: World, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Placed]]:
    """One frame of the drive and where each vehicle's plate is in it."""
    t = index / FPS
    s = ego_distance_m(t)
    dusk = dusk_at(t)
    light = 1.0 - 0.5 * dusk
    speed = ego_speed_kmh(t) / 3.6
    cam = Camera(cy=HORIZON_Y + float(world.shake[index]) * min(1.0, speed / 5 + 0.2))
    cv = Canvas(W, H, light)
    glows = draw_street(cv, cam, s, world.buildings, dusk, world.texture, world.ego_stop_s, t)
    # forward motion blurs the street radially: average a few zooms about the vanishing point
    if speed > 0.5:
        base = cv.img.astype(np.float32)
        acc = base.copy()
        steps = 3
        for k in range(1, steps):
            zoom = 1 + speed * STREET_BLUR_S / 25.0 * k / (steps - 1)
            m = cv2.getRotationMatrix2D((cam.cx, cam.cy), 0, zoom)
            acc += cv2.warpAffine(base, m, (W, H), borderMode=cv2.BORDER_REPLICATE)
        cv.img = (acc / steps).astype(np.uint8)
    # the street is out of the focus plate-reading cameras are set to; it also keeps the video small
    cv.img = cv2.GaussianBlur(cv.img, (0, 0), BACKGROUND_BLUR)
    placed: dict[str, Placed] = {}
    order = [(v, pose_at(v, t)) for v in VEHICLES]
    for v, pose in sorted(((v, p) for v, p in order if p is not None), key=lambda vp: -vp[1][1]):
        later = pose_at(v, min(t + SHUTTER_S, v.keys[-1][0])) or pose
        q0 = cam.project(_car_points(plate_quad_3d(v, world.plates[v.name]), *pose)).mean(axis=0)
        q1 = cam.project(_car_points(plate_quad_3d(v, world.plates[v.name]), *later)).mean(axis=0)
        p, g = draw_vehicle(cv, cam, v, world.plates[v.name], pose, (float(q1[0] - q0[0]), float(q1[1] - q0[1])),
                            dusk)
        placed[v.name] = p
        glows += g
    cast = np.array([1.0, 1.0, 1.0], np.float32) * (1 - dusk) + np.array([1.12, 0.95, 0.85], np.float32) * dusk
    img = np.clip(cv.img.astype(np.float32) * cv.gain[..., None] * cast, 0, 255).astype(np.uint8)
    if glows:
        img = _glow(img, glows, placed, dusk)
    cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
    noise = np.empty(img.shape, np.float32)
    cv2.randn(noise, 0.0, NOISE_SIGMA[0] + (NOISE_SIGMA[1] - NOISE_SIGMA[0]) * dusk)  # type: ignore[call-overload]
    img = cv2.add(img, noise, dtype=cv2.CV_8U)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if out is None:
        raise RuntimeError("JPEG decoding failed")
    return out, placed


# --------------------------------------------------------------------------- visibility bookkeeping


def _plate_box(quad: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def visible_box(name: str, placed: dict[str, Placed]) -> tuple[int, int, int, int] | None:
    """The plate's box when it is wholly in frame, at least MIN_VISIBLE_PX wide and not hidden by a
    nearer vehicle; None otherwise."""
    p = placed.get(name)
    if p is None:
        return None
    x, y, w, h = _plate_box(p.plate_quad)
    if x < 1 or y < 1 or x + w > W - 1 or y + h > H - 1 or w < MIN_VISIBLE_PX:
        return None
    for other, q in placed.items():
        if other == name or q.z >= p.z:
            continue
        cx0, cy0, cx1, cy1 = q.car_box
        if x < cx1 and cx0 < x + w and y < cy1 and cy0 < y + h:
            return None
    return x, y, w, h


# --------------------------------------------------------------------------- track and watchlist


def write_track(path: Path, hz: int = 5) -> None:
    """The patrol car's GPS track along the boulevard, matching the video's speed profile."""
    r_earth = 6_371_000.0
    head = math.radians(HEADING_DEG)
    rows = []
    for k in range(int(DURATION_S * hz) + 1):
        t = k / hz
        d = ego_distance_m(t)
        lat = START_LAT + math.degrees(d * math.cos(head) / r_earth)
        lon = START_LON + math.degrees(d * math.sin(head) / (r_earth * math.cos(math.radians(START_LAT))))
        rows.append((f"{t:.1f}", f"{lat:.7f}", f"{lon:.7f}", f"{ego_speed_kmh(t):.1f}", f"{HEADING_DEG:.1f}"))
    with path.open("w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(("t_s", "lat", "lon", "speed_kmh", "heading_deg"))
        wr.writerows(rows)


def _decoy(rng: np.random.Generator, region: str) -> str:
    letters, digits = "ABCDEFGHJKLMNPRSTUVWXYZ", "0123456789"
    pick = lambda chars, n: "".join(chars[int(rng.integers(len(chars)))] for _ in range(n))  # noqa: E731
    if region == "MD":
        return pick(letters, 3) + pick(digits, 3)
    if region == "RO":
        return pick(letters, 2) + pick(digits, 2) + pick(letters, 3)
    if region == "UA":
        return pick("ABCEHIKMOPTX", 2) + pick(digits, 4) + pick("ABCEHIKMOPTX", 2)
    if region == "D":
        return pick(letters, 1) + pick(letters, 2) + pick(digits, 4)
    if region == "PL":
        return pick(letters, 2) + pick(digits, 5)
    if region == "US":
        return pick(digits, 1) + pick(letters, 3) + pick(digits, 3)
    if region == "BR":
        return pick(letters, 3) + pick(digits, 1) + pick(letters, 1) + pick(digits, 2)
    return pick(letters, 2) + pick(digits, 3) + pick(letters, 2)


def watchlist_rows(seed: int, n_decoys: int = 20) -> list[dict[str, str]]:
    """The hit entries plus decoys that differ from every plate of the drive by 2+ edits, even with
    OCR-confusable characters folded, so only the intended entries can match."""
    from picar.types import WatchEntry
    from picar.watchlist.index import Watchlist

    rows: list[dict[str, str]] = []
    for plate, lst, prio, covert, desc, reason, notes, source, _v, _how in HIT_ENTRIES:
        rows.append({"plate": LISTED_AS.get(plate, plate), "region": "", "list": lst, "priority": str(prio),
                     "covert": "da" if covert else "nu", "effective": "", "expires": "",
                     "description": desc, "reason": reason, "notes": notes, "source": source})
    rng = np.random.default_rng([seed, 2000])
    lists = ("stolen_vehicle", "stolen_vehicle", "wanted_person", "stolen_plate", "insurance", "amber")
    drive = [(v.text, 1.0) for v in VEHICLES]
    while len(rows) < len(HIT_ENTRIES) + n_decoys:
        region = DECOY_REGIONS[int(rng.integers(len(DECOY_REGIONS)))]
        plate = _decoy(rng, region)
        if Watchlist.from_entries([WatchEntry(plate=plate)]).match(drive):
            continue
        lst = lists[int(rng.integers(len(lists)))]
        rows.append({"plate": plate, "region": region, "list": lst, "priority": str(int(rng.integers(1, 5))),
                     "covert": "nu", "effective": "",
                     "expires": "" if rng.random() < 0.6 else "2031-12-31",
                     "description": "", "reason": {"stolen_vehicle": "furat", "stolen_plate": "placă furată",
                                                   "wanted_person": "proprietarul este căutat",
                                                   "insurance": "fără asigurare valabilă",
                                                   "amber": "persoană dispărută"}[lst],
                     "notes": "", "source": "demo, intrare de control"})
    return rows


def write_watchlist(path: Path, rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(WATCHLIST_HEADER)
        wr.writerows([row[k] for k in WATCHLIST_FIELDS] for row in rows)


# --------------------------------------------------------------------------- main


def build(out: Path, seed: int, command: str) -> dict[str, Any]:
    """Render the video and write all assets; returns the expected.json document."""
    out.mkdir(parents=True, exist_ok=True)
    world = make_world(seed)
    video = out / "drive.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {video} with the mp4v codec")
    rng = np.random.default_rng([seed, 3000])
    boxes: dict[str, list[list[int]]] = {v.name: [] for v in VEHICLES}
    for i in range(N_FRAMES):
        frame, placed = render_frame(world, i, rng)
        writer.write(frame)
        for v in VEHICLES:
            b = visible_box(v.name, placed)
            if b is not None:
                boxes[v.name].append([i, *b])
    writer.release()
    hits = {h[8]: h for h in HIT_ENTRIES}
    vehicles = []
    for v in VEHICLES:
        bx = boxes[v.name]
        if not bx:
            raise RuntimeError(f"{v.name} ({v.text}) is never visible; fix its key poses")
        ws = [b[3] for b in bx]
        hs = [b[4] for b in bx]
        hit = hits.get(v.name)
        vehicles.append({
            "id": v.name, "plate": v.text, "style": v.style, "rows": world.plates[v.name].rows,
            "facing": v.facing, "first_frame": bx[0][0], "last_frame": bx[-1][0], "frames_visible": len(bx),
            "box_width_px": [min(ws), max(ws)], "box_height_px": [min(hs), max(hs)],
            "largest_frame": bx[int(np.argmax(ws))][0],
            "watchlist": None if hit is None else {"plate": hit[0], "list": hit[1], "priority": hit[2],
                                                     "covert": hit[3], "match": hit[9]},
            "boxes": bx,
        })
    expected: dict[str, Any] = {
        "video": "drive.mp4", "frames": N_FRAMES, "fps": FPS, "width": W, "height": H, "seed": seed,
        "command": command, "min_visible_px": MIN_VISIBLE_PX,
        "boxes_format": "[frame, x, y, w, h] in frame pixels, axis-aligned around the plate",
        "dusk_from_frame": int(DUSK_FROM_S * FPS), "track": "track.csv", "watchlist": "watchlist.csv",
        "vehicles": vehicles,
    }
    text = json.dumps(expected, indent=1)
    # one line per box: lists of plain numbers are written compactly
    text = re.sub(r"\[[\s\d,.-]+\]", lambda m: json.dumps(json.loads(m.group())), text)
    (out / "expected.json").write_text(text + "\n", encoding="utf-8")
    write_track(out / "track.csv")
    write_watchlist(out / "watchlist.csv", watchlist_rows(seed))
    return expected


# --------------------------------------------------------------------------- reading it back


@dataclass
class PlateReads:
    """What the models made of one vehicle's plate over the frames where it is visible."""

    plate: str
    frames: int = 0  # frames looked at where the plate is visible
    detected: int = 0  # ... and the detector found it (IoU >= 0.3 with the expected box)
    top1: int = 0  # ... and the OCR's best text is the plate
    in_candidates: int = 0  # ... and the plate is among the OCR's candidates
    texts: dict[str, int] = field(default_factory=dict)  # best texts read, with counts
    best_frames: list[int] = field(default_factory=list)  # frames where the best text is the plate


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / float(aw * ah + bw * bh - iw * ih)


def read_drive(
    folder: Path, detector: Any, ocr: Any, frames: set[int] | None = None
) -> tuple[dict[str, PlateReads], int]:
    """Run a detector (`.detect(frame)`) and an OCR (`.read(crops)`) over the drive in `folder`, frame
    by frame as the daemon would (crops as picar.pipeline.loop.crop_plate makes them). Returns the reads per
    vehicle id and the number of detections that overlap no expected plate. `frames` limits the frames run."""
    from picar.pipeline.loop import crop_plate

    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    by_frame: dict[int, list[tuple[str, tuple[int, int, int, int]]]] = {}
    reads = {v["id"]: PlateReads(v["plate"]) for v in expected["vehicles"]}
    for v in expected["vehicles"]:
        for f, x, y, w, h in v["boxes"]:
            by_frame.setdefault(f, []).append((v["id"], (x, y, w, h)))
    cap = cv2.VideoCapture(str(folder / expected["video"]))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {folder / expected['video']}")
    stray = 0
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if frames is None or index in frames:
                dets = detector.detect(frame)
                matched: set[int] = set()
                for vid, box in by_frame.get(index, []):
                    r = reads[vid]
                    r.frames += 1
                    scored = [(_iou((d.x, d.y, d.w, d.h), box), k) for k, d in enumerate(dets)]
                    best = max(scored, default=(0.0, -1))
                    if best[0] < 0.3:
                        continue
                    matched.add(best[1])
                    r.detected += 1
                    result = ocr.read([crop_plate(frame, dets[best[1]])])[0]
                    r.texts[result.text] = r.texts.get(result.text, 0) + 1
                    if result.text == r.plate:
                        r.top1 += 1
                        r.best_frames.append(index)
                    if r.plate in {t for t, _c in result.candidates} | {result.text}:
                        r.in_candidates += 1
                stray += sum(1 for k in range(len(dets)) if k not in matched)
            index += 1
    finally:
        cap.release()
    return reads, stray


def _read_main(folder: Path, detector_path: Path, ocr_path: Path) -> int:
    from picar.vision.detector import PlateDetector
    from picar.vision.ocr import PlateOcr

    reads, stray = read_drive(folder, PlateDetector(detector_path), PlateOcr(ocr_path))
    print(f"{'plate':9s} {'frames':>6s} {'found':>6s} {'top1':>5s} {'in cand':>7s}  most read")
    for r in reads.values():
        common = sorted(r.texts.items(), key=lambda kv: -kv[1])[:4]
        print(f"{r.plate:9s} {r.frames:6d} {r.detected:6d} {r.top1:5d} {r.in_candidates:7d}  "
              + ", ".join(f"{t or '-'} x{n}" for t, n in common))
    print(f"detections on no expected plate: {stray}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: render the demo drive into --out, or with --read run the models over it."""
    ap = argparse.ArgumentParser(prog="python -m hw_sim.make_demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("hw_sim/demo"), help="output folder (default hw_sim/demo)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--read", action="store_true",
                    help="do not render: run the detector and OCR over the drive in --out and print what they read")
    ap.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help=f"with --read (default {DEFAULT_DETECTOR})")
    ap.add_argument("--ocr", type=Path, default=DEFAULT_OCR, help=f"with --read (default {DEFAULT_OCR})")
    args = ap.parse_args(argv)
    if args.read:
        return _read_main(args.out, args.detector, args.ocr)
    command = f"python -m hw_sim.make_demo --out {args.out} --seed {args.seed}"
    expected = build(args.out, args.seed, command)
    for v in expected["vehicles"]:
        print(f"{v['id']} {v['plate']:9s} {v['style']:12s} frames {v['first_frame']:3d}-{v['last_frame']:3d} "
              f"({v['frames_visible']:3d}) width {v['box_width_px'][0]}-{v['box_width_px'][1]} px"
              + (f"  -> {v['watchlist']['list']} ({v['watchlist']['match']})" if v["watchlist"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
