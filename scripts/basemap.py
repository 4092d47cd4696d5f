#!/usr/bin/env python3
"""Build the HQ console's offline basemap (picar/hq/basemap/*.geojson) from Natural Earth.

Natural Earth (naturalearthdata.com) is in the public domain. Its 1:110m countries and its populated places
(capitals) reach this machine without a map server as the shapefiles inside the geopandas 0.14.4 wheel on
PyPI (geopandas/datasets/naturalearth_lowres and naturalearth_cities, Natural Earth 5.x). This script takes
them from that wheel (checked against its SHA-256), reads the shapefiles and their attribute tables and
writes GeoJSON rounded to 3 decimals (about 100 m, below what 1:110m resolves):

    python3 scripts/basemap.py            # downloads the wheel with pip, writes the two files
    python3 scripts/basemap.py --wheel geopandas-0.14.4-py3-none-any.whl

The output is committed; the console serves it as is, so HQ needs no internet for its map.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

WHEEL = "geopandas-0.14.4-py3-none-any.whl"
WHEEL_SHA256 = "3bb6473cb59d51e1a7fe2dbc24a1a063fb0ebdeddf3ce08ddbf8c7ddc99689aa"
OUT = Path(__file__).resolve().parent.parent / "picar" / "hq" / "basemap"
LAYERS = {  # output name: (folder in the wheel, attribute fields kept)
    "countries": ("naturalearth_lowres", {"name": "name", "iso_a3": "iso_a3"}),
    "capitals": ("naturalearth_cities", {"name": "name"}),
}
DECIMALS = 3
# The tables' encoding is in the .cpg beside them; the cities' one has no letter for some names and the source
# wrote "?" there instead. The ones an operator of this product sees are restored.
LOST_LETTERS = {"Chi?in?u": "Chișinău", "?saka": "Ōsaka"}


def read_dbf(data: bytes, encoding: str = "cp1252") -> list[dict[str, str]]:
    """The records of a dBASE III table as text fields (the attribute table beside a shapefile)."""
    count, header_len, record_len = struct.unpack_from("<IHH", data, 4)
    fields: list[tuple[str, int]] = []
    pos = 32
    while data[pos] != 0x0D:
        name = data[pos:pos + 11].split(b"\0")[0].decode("ascii")
        fields.append((name, data[pos + 16]))
        pos += 32
    records = []
    for i in range(count):
        rec = data[header_len + i * record_len: header_len + (i + 1) * record_len]
        if rec[:1] == b"*":  # deleted
            continue
        off, row = 1, {}
        for name, width in fields:
            text = rec[off:off + width].decode(encoding).strip()
            row[name] = LOST_LETTERS.get(text, text)
            off += width
        records.append(row)
    return records


def _pt(x: float, y: float) -> list[float]:
    return [round(x, DECIMALS), round(y, DECIMALS)]


def read_shapes(data: bytes) -> list[dict[str, Any] | None]:
    """The geometries of a shapefile (points and polygons, the two kinds these layers hold) as GeoJSON."""
    shapes: list[dict[str, Any] | None] = []
    pos = 100
    while pos < len(data):
        _num, words = struct.unpack_from(">ii", data, pos)
        body = data[pos + 8: pos + 8 + words * 2]
        pos += 8 + words * 2
        kind = struct.unpack_from("<i", body, 0)[0]
        if kind == 0:
            shapes.append(None)
        elif kind == 1:
            shapes.append({"type": "Point", "coordinates": _pt(*struct.unpack_from("<dd", body, 4))})
        elif kind == 5:
            n_parts, n_points = struct.unpack_from("<ii", body, 36)
            starts = list(struct.unpack_from(f"<{n_parts}i", body, 44)) + [n_points]
            xy = struct.unpack_from(f"<{2 * n_points}d", body, 44 + 4 * n_parts)
            rings = [[_pt(xy[2 * j], xy[2 * j + 1]) for j in range(starts[k], starts[k + 1])] for k in range(n_parts)]
            # Each outer ring (clockwise in a shapefile) starts a polygon; the holes after it belong to it.
            polys: list[list[list[list[float]]]] = []
            for ring in rings:
                area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:], strict=False))
                if area2 <= 0 or not polys:
                    polys.append([ring])
                else:
                    polys[-1].append(ring)
            shapes.append({"type": "MultiPolygon", "coordinates": polys})
        else:
            raise ValueError(f"shape type {kind} is not handled")
    return shapes


def layer(wheel: zipfile.ZipFile, folder: str, keep: dict[str, str]) -> dict[str, Any]:
    base = f"geopandas/datasets/{folder}/{folder}"
    shapes = read_shapes(wheel.read(base + ".shp"))
    names = set(wheel.namelist())
    encoding = wheel.read(base + ".cpg").decode("ascii").strip() if base + ".cpg" in names else "cp1252"
    rows = read_dbf(wheel.read(base + ".dbf"), encoding)
    if len(shapes) != len(rows):
        raise ValueError(f"{folder}: {len(shapes)} shapes but {len(rows)} attribute rows")
    feats = [{"type": "Feature", "properties": {out: row.get(src, "") for src, out in keep.items()}, "geometry": g}
             for g, row in zip(shapes, rows, strict=True) if g is not None]
    return {"type": "FeatureCollection", "features": feats}


def fetch_wheel(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp),
                    "geopandas==0.14.4"], check=True)
    return tmp / WHEEL


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"a local {WHEEL} (default: pip downloads it)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.wheel or fetch_wheel(Path(tmp))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            print(f"basemap: {path} has SHA-256 {digest}, expected {WHEEL_SHA256}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(path) as wheel:
            for name, (folder, keep) in LAYERS.items():
                out = OUT / f"{name}.geojson"
                data = layer(wheel, folder, keep)
                out.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
                print(f"{out}: {len(data['features'])} features, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
