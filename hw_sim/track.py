"""A driven track for the simulator: CSV rows t_s,lat,lon,speed_kmh,heading_deg.

A row with empty lat and lon means the receiver has no fix from that time until the next row
with a position (a tunnel, a car park).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("t_s", "lat", "lon", "speed_kmh", "heading_deg")


@dataclass(frozen=True)
class TrackPoint:
    """Where the car was at t_s seconds into the drive; lat/lon None while there is no fix."""

    t_s: float
    lat: float | None
    lon: float | None
    speed_kmh: float = 0.0
    heading_deg: float = 0.0

    @property
    def has_fix(self) -> bool:
        return self.lat is not None and self.lon is not None


class TrackError(ValueError):
    """A track file that cannot be used; the message names the line, column and value."""


def load_track(path: Path) -> list[TrackPoint]:
    """Read a track CSV file; raises TrackError naming the line and field that is wrong."""
    return parse_track(path.read_text(encoding="utf-8"), name=str(path))


def parse_track(text: str, name: str = "<track>") -> list[TrackPoint]:
    """Parse track CSV text (header required, t_s strictly increasing)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise TrackError(f"{name}:1: header must be {','.join(COLUMNS)}, got {header!r}")
    points: list[TrackPoint] = []
    for lineno, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(COLUMNS):
            raise TrackError(f"{name}:{lineno}: expected {len(COLUMNS)} columns, got {len(row)}: {row!r}")
        t_s = _number(name, lineno, "t_s", row[0], 0, math.inf)
        lat = _number(name, lineno, "lat", row[1], -90, 90, optional=True)
        lon = _number(name, lineno, "lon", row[2], -180, 180, optional=True)
        if (lat is None) != (lon is None):
            raise TrackError(f"{name}:{lineno}: lat and lon must both be given or both be empty")
        speed = _number(name, lineno, "speed_kmh", row[3], 0, 1000, optional=True) or 0.0
        heading = _number(name, lineno, "heading_deg", row[4], 0, 360, optional=True) or 0.0
        assert t_s is not None
        if points and t_s <= points[-1].t_s:
            raise TrackError(f"{name}:{lineno}: t_s {row[0]!r} must be greater than {points[-1].t_s}")
        points.append(TrackPoint(t_s, lat, lon, speed, heading))
    if not points:
        raise TrackError(f"{name}: no track points")
    return points


def _number(
    name: str, lineno: int, column: str, raw: str, lo: float, hi: float, *, optional: bool = False
) -> float | None:
    raw = raw.strip()
    if not raw:
        if optional:
            return None
        raise TrackError(f"{name}:{lineno}: {column} is empty")
    try:
        value = float(raw)
    except ValueError:
        raise TrackError(f"{name}:{lineno}: {column} {raw!r} is not a number") from None
    if not lo <= value <= hi or math.isnan(value):
        raise TrackError(f"{name}:{lineno}: {column} {raw!r} outside {lo}..{hi}")
    return value


def track_at(points: list[TrackPoint], t_s: float) -> TrackPoint | None:
    """The car's state at t_s: interpolated between rows, no fix inside a no-fix span, None outside."""
    if not points or t_s < points[0].t_s or t_s > points[-1].t_s:
        return None
    lo, hi = 0, len(points) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid].t_s <= t_s:
            lo = mid
        else:
            hi = mid
    a, b = points[lo], points[hi]
    if t_s >= b.t_s:
        a = b
    if a.t_s == t_s or not a.has_fix or not b.has_fix:
        return TrackPoint(t_s, a.lat, a.lon, a.speed_kmh if a.has_fix else 0.0, a.heading_deg)
    assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
    f = (t_s - a.t_s) / (b.t_s - a.t_s)
    dlon = (b.lon - a.lon + 180) % 360 - 180
    dhead = (b.heading_deg - a.heading_deg + 180) % 360 - 180
    return TrackPoint(
        t_s,
        a.lat + f * (b.lat - a.lat),
        (a.lon + f * dlon + 180) % 360 - 180,
        a.speed_kmh + f * (b.speed_kmh - a.speed_kmh),
        (a.heading_deg + f * dhead) % 360,
    )
