"""`picar hq bench-search --dsn DSN`: how long the console's investigative search takes on the reads stored.

Each query is the console's own call, `store.queries.search_reads` (the search and its audit entry in one
committed transaction), timed from the call to its return. The plates asked for are half taken from stored
reads (a plate the fleet has seen: an investigator's usual case) and half new plates of the same series
(mostly never read: the search must still say so quickly). The kinds, interleaved at random:

    exact            one plate, every day kept            exact_week      the same, the last 7 days
    exact_car        one plate, one car                   exact_area      one plate, a 20 km box round a town
    confusable       a plate with a look-alike slip, found by its folded key; confusable_week: the last 7 days
    prefix_week      the first four characters and `*`, the last 7 days
    prefix           the same over every day kept
    area_hour        no plate: a 2 km box in a town, one hour (who passed the scene)

Fill a database first with `picar hq fill-reads` (picar/hq/fill_reads.py). Prints one line per kind with
p50/p95/p99 in milliseconds and the mean number of reads found; `--json` prints the whole report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from picar.hq.fill_reads import KM_PER_DEG_LAT, TOWNS, misread
from picar.hq.store.queries import search_reads
from picar.hq.store.records import Area, ReadQuery, Searcher
from picar.tools.stats import percentiles
from picar.vision.grammar import pick_series, sample_text

SEARCHER = Searcher(username="bench", case_number="BENCH-1", reason="search latency benchmark")
TARGET_P95_MS = 300.0  # issue 17: plate search (exact and confusable) over 10 million reads


@dataclass(frozen=True)
class Span:
    """What the stored reads cover, for drawing queries."""

    first: dt.datetime
    last: dt.datetime
    vehicles: list[str]
    plates: list[str]  # plates of stored reads (a sample)


def _box(lat: float, lon: float, half_km: float) -> Area:
    dlat = half_km / KM_PER_DEG_LAT
    dlon = half_km / (KM_PER_DEG_LAT * float(np.cos(np.radians(lat))))
    return Area(south=lat - dlat, west=lon - dlon, north=lat + dlat, east=lon + dlon)


class QueryMaker:
    """Draws the benchmark's queries from what is stored."""

    def __init__(self, span: Span, rng: np.random.Generator) -> None:
        self.span = span
        self.rng = rng
        self.kinds: dict[str, Callable[[], ReadQuery]] = {
            "exact": lambda: ReadQuery(plate=self.plate()),
            "exact_week": lambda: ReadQuery(plate=self.plate(), since=self.week_ago()),
            "exact_car": lambda: ReadQuery(plate=self.plate(), vehicle=self.vehicle()),
            "exact_area": lambda: ReadQuery(plate=self.plate(), area=self.town_box(10.0)),
            "confusable": lambda: ReadQuery(plate=misread(self.plate(), rng), confusable=True),
            "confusable_week": lambda: ReadQuery(plate=misread(self.plate(), rng), confusable=True,
                                                 since=self.week_ago()),
            "prefix_week": lambda: ReadQuery(plate=self.plate()[:4] + "*", since=self.week_ago()),
            "prefix": lambda: ReadQuery(plate=self.plate()[:4] + "*"),
            "area_hour": self.area_hour,
        }

    def plate(self) -> str:
        if self.rng.random() < 0.5:
            return self.span.plates[int(self.rng.integers(len(self.span.plates)))]
        return sample_text(pick_series("md", self.rng), self.rng)

    def vehicle(self) -> str:
        return self.span.vehicles[int(self.rng.integers(len(self.span.vehicles)))]

    def week_ago(self) -> dt.datetime:
        return self.span.last - dt.timedelta(days=7)

    def town_box(self, half_km: float) -> Area:
        town = TOWNS[int(self.rng.integers(len(TOWNS)))]
        return _box(town.lat, town.lon, half_km)

    def area_hour(self) -> ReadQuery:
        town = TOWNS[int(self.rng.integers(len(TOWNS)))]
        lat = town.lat + self.rng.normal(0, town.radius_km / 2) / KM_PER_DEG_LAT
        lon = town.lon + self.rng.normal(0, town.radius_km / 2) / (KM_PER_DEG_LAT * np.cos(np.radians(town.lat)))
        seconds = (self.span.last - self.span.first).total_seconds()
        start = self.span.first + dt.timedelta(seconds=float(self.rng.uniform(0, max(seconds - 3600, 1))))
        return ReadQuery(area=_box(float(lat), float(lon), 1.0), since=start, until=start + dt.timedelta(hours=1))


def stored_span(conn: psycopg.Connection, sample_plates: int = 5000) -> Span:
    """The time range, cars and a sample of plates of the stored reads; ValueError when there are none."""
    row = conn.execute("SELECT min(time), max(time) FROM reads").fetchone()
    if row is None or row[0] is None:
        raise ValueError("no reads stored: fill the database first (picar hq fill-reads)")
    vehicles = _vehicles(conn)
    plates = [r[0] for r in conn.execute(
        "SELECT plate FROM reads TABLESAMPLE SYSTEM (1) REPEATABLE (7) LIMIT %s", (sample_plates,))]
    if not plates:
        plates = [r[0] for r in conn.execute("SELECT plate FROM reads LIMIT %s", (sample_plates,))]
    return Span(row[0], row[1], vehicles, plates)


def _vehicles(conn: psycopg.Connection) -> list[str]:
    # The cars that ever read a plate, from the (vehicle, time) index without scanning every read.
    rows = conn.execute(
        "WITH RECURSIVE v AS (SELECT min(vehicle) AS id FROM reads UNION ALL "
        "SELECT (SELECT min(vehicle) FROM reads WHERE vehicle > v.id) FROM v WHERE v.id IS NOT NULL) "
        "SELECT id FROM v WHERE id IS NOT NULL").fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class KindResult:
    kind: str
    ms: dict[str, float]
    found_mean: float
    truncated: int  # queries that hit the limit

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ms": self.ms, "found_mean": round(self.found_mean, 1),
                "truncated": self.truncated}


def run(conn: psycopg.Connection, per_kind: int = 200, seed: int = 7,
        kinds: list[str] | None = None) -> list[KindResult]:
    """``per_kind`` queries of each kind, interleaved at random; timings and result sizes per kind."""
    rng = np.random.default_rng(seed)
    maker = QueryMaker(stored_span(conn), rng)
    chosen = kinds or list(maker.kinds)
    unknown = [k for k in chosen if k not in maker.kinds]
    if unknown:
        raise ValueError(f"kinds {unknown}: known {', '.join(maker.kinds)}")
    order = [k for k in chosen for _ in range(per_kind)]
    rng.shuffle(order)
    times: dict[str, list[float]] = {k: [] for k in chosen}
    found: dict[str, list[int]] = {k: [] for k in chosen}
    truncated = dict.fromkeys(chosen, 0)
    for kind in order:
        query = maker.kinds[kind]()
        started = time.perf_counter()
        result = search_reads(conn, query, SEARCHER)
        times[kind].append((time.perf_counter() - started) * 1000)
        found[kind].append(len(result.reads))
        truncated[kind] += int(result.truncated)
    return [KindResult(k, percentiles(times[k], 1), float(np.mean(found[k])), truncated[k]) for k in chosen]


def server_facts(conn: psycopg.Connection) -> dict[str, Any]:
    """What the figures depend on: the number of reads, their size on disk, the server's memory settings."""
    facts: dict[str, Any] = {}
    row = conn.execute("SELECT sum(c.reltuples)::bigint, sum(pg_total_relation_size(c.oid)), count(*) "
                       "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = 'reads'::regclass").fetchone()
    if row is not None:
        facts.update(reads_estimate=int(row[0] or 0), reads_bytes=int(row[1] or 0), partitions=int(row[2]))
    for name in ("server_version", "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost"):
        facts[name] = conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
    return facts


def bench_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar hq bench-search", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True, help="libpq connection string of a database filled with reads")
    ap.add_argument("--queries", type=int, default=200, help="queries of each kind (default 200)")
    ap.add_argument("--kinds", help="comma-separated kinds (default all)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    from picar.hq.store import connect

    try:
        with connect(args.dsn, application_name="picar-bench-search") as conn:
            facts = server_facts(conn)
            results = run(conn, args.queries, args.seed, args.kinds.split(",") if args.kinds else None)
    except (psycopg.Error, ValueError) as exc:
        print(f"picar hq bench-search: {exc}".strip(), file=sys.stderr)
        return 1
    plate_p95 = max((r.ms["p95"] for r in results if r.kind.startswith(("exact", "confusable"))), default=float("nan"))
    if args.json:
        print(json.dumps({"server": facts, "kinds": [r.as_json() for r in results], "plate_p95_ms": plate_p95,
                          "target_p95_ms": TARGET_P95_MS}, indent=2))
    else:
        print(f"reads ~{facts.get('reads_estimate', 0):,} in {facts.get('partitions', 0)} partitions, "
              f"{facts.get('reads_bytes', 0) / 2**30:.1f} GiB; shared_buffers {facts['shared_buffers']}")
        print(f"{'kind':<16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'found':>8} {'full':>5}")
        for r in results:
            print(f"{r.kind:<16} {r.ms['p50']:>8.1f} {r.ms['p95']:>8.1f} {r.ms['p99']:>8.1f} {r.found_mean:>8.1f} "
                  f"{r.truncated:>5}")
        print(f"plate search (exact, confusable) p95 {plate_p95:.1f} ms; target {TARGET_P95_MS:.0f} ms")
    return 0
