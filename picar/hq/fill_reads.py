"""A month of a fleet's reads, made up and bulk-loaded, for measuring HQ's search (`picar hq fill-reads`).

What makes the made-up reads behave like real ones for the indexes and the planner:

- plates from the Moldovan region's grammar (`picar.vision.grammar`: current and pre-2015 Moldovan series with
  Romanian, Ukrainian and Transnistrian ones at their shares), a population of a million registrations;
- sightings skewed as on a road: the plate of rank r (a random order) is read with weight 1/(r + 1000), so
  a bus or a taxi is read a thousand times a month, a median plate a few times, many never;
- OCR slips: a share of reads has one character replaced by its look-alike (0/O, 8/B, 1/I, ...), which only
  the confusable search (the folded `plate_key`) finds under the true plate;
- each plate and each car has a home town (Chisinau the largest share); a read is taken near the car's
  town, mostly by a car of the plate's own town;
- the time of day follows traffic (peaks at 8 and 18 h, little at night), weekends are quieter.

Each day goes into its own table by COPY, which is then attached as that day's partition of `reads`:
PostgreSQL builds the partition's indexes in one pass on attach instead of row by row. A day whose
partition already exists (the ingest creates today's and two ahead) is copied into it as it is.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from picar.hq.store.partitions import partition_name
from picar.hq.store.plates import plate_key
from picar.isotime import event_iso
from picar.vision.grammar import pick_series, sample_text
from picar.watchlist.entries import DEFAULT_CONFUSABLES


@dataclass(frozen=True)
class Town:
    name: str
    lat: float
    lon: float
    share: float  # of the fleet's cars and of the registered plates
    radius_km: float  # one standard deviation of where reads are taken around its centre


TOWNS = (
    Town("Chisinau", 47.0245, 28.8323, 0.40, 5.0),
    Town("Balti", 47.7617, 27.9294, 0.10, 3.0),
    Town("Cahul", 45.9042, 28.1994, 0.05, 2.5),
    Town("Ungheni", 47.2042, 27.7958, 0.05, 2.5),
    Town("Soroca", 48.1561, 28.2975, 0.05, 2.5),
    Town("Orhei", 47.3800, 28.8247, 0.05, 2.5),
    Town("Comrat", 46.2956, 28.6542, 0.05, 2.5),
    Town("Edinet", 48.1667, 27.3000, 0.05, 2.0),
    Town("Hincesti", 46.8281, 28.5936, 0.05, 2.0),
    Town("Straseni", 47.1414, 28.6103, 0.05, 2.0),
    Town("Causeni", 46.6442, 29.4114, 0.05, 2.0),
    Town("Drochia", 48.0333, 27.8167, 0.05, 2.0),
)
# Reads per hour of the day (UTC+2 local time folded in roughly): traffic peaks at 8 and 18 h.
HOURLY = (1, 0.6, 0.4, 0.4, 0.6, 1.5, 4, 7, 9, 8, 7, 7, 7.5, 7.5, 7, 7.5, 8.5, 9.5, 9, 7, 5, 3.5, 2.5, 1.5)
WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.05, 0.8, 0.65)  # Monday .. Sunday
RANK_OFFSET = 1000  # sighting weight 1/(rank + RANK_OFFSET): the busiest plate ~1,400 reads in 10 million
OWN_TOWN = 0.7  # share of a plate's reads taken by a car of its own town
KM_PER_DEG_LAT = 111.2
_COLUMNS = ("time", "event_id", "vehicle", "camera", "plate", "plate_key", "confidence", "candidates",
            "first_seen", "frames", "box", "region", "lat", "lon", "position", "received_at")


@dataclass(frozen=True)
class FillPlan:
    """How many reads, over which days (``end`` is the last day, UTC), by how many cars, of how many plates."""

    reads: int = 10_000_000
    days: int = 30
    end: dt.date | None = None  # default: today
    vehicles: int = 200
    population: int = 1_000_000
    misread: float = 0.04  # share of reads with one look-alike character
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("reads", "days", "vehicles", "population"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: must be at least 1")
        if not 0 <= self.misread <= 1:
            raise ValueError(f"misread {self.misread}: must be between 0 and 1")

    def day_list(self) -> list[dt.date]:
        last = self.end or dt.datetime.now(dt.UTC).date()
        return [last - dt.timedelta(days=self.days - 1 - i) for i in range(self.days)]

    def per_day(self) -> list[int]:
        """Reads per day, by weekday, summing to ``reads``."""
        days = self.day_list()
        weights = np.array([WEEKDAY[d.weekday()] for d in days])
        counts = np.floor(weights / weights.sum() * self.reads).astype(int)
        counts[: self.reads - int(counts.sum())] += 1
        return [int(c) for c in counts]


@dataclass(frozen=True)
class DayLoaded:
    day: dt.date
    reads: int
    seconds: float
    attached: bool  # copied into a new table and attached (else into the existing partition)


def vehicle_ids(count: int) -> list[str]:
    return [f"car{i:04d}" for i in range(1, count + 1)]


def plate_population(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct plate texts of the Moldovan region's series, in random order."""
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen[sample_text(pick_series("md", rng), rng)] = None
    return list(seen)


def _misread_table() -> dict[str, str]:
    """Each look-alike character to another of its class (0 -> O, O -> D, ..., Q -> 0)."""
    out: dict[str, str] = {}
    for cls in DEFAULT_CONFUSABLES:
        for i, c in enumerate(cls):
            out[c] = cls[(i + 1) % len(cls)]
    return out


MISREAD = _misread_table()


def misread(text: str, rng: np.random.Generator) -> str:
    """``text`` with one of its look-alike characters replaced (unchanged if it has none)."""
    spots = [i for i, c in enumerate(text) if c in MISREAD]
    if not spots:
        return text
    i = spots[int(rng.integers(len(spots)))]
    return text[:i] + MISREAD[text[i]] + text[i + 1:]


class ReadMaker:
    """Draws the rows of one day at a time, the same for the same plan."""

    def __init__(self, plan: FillPlan) -> None:
        self.plan = plan
        self.rng = np.random.default_rng(plan.seed)
        self.plates = plate_population(plan.population, self.rng)
        shares = np.array([t.share for t in TOWNS])
        shares /= shares.sum()
        self.plate_town = self.rng.choice(len(TOWNS), size=len(self.plates), p=shares)
        self.vehicles = vehicle_ids(plan.vehicles)
        self.vehicle_town = self.rng.choice(len(TOWNS), size=plan.vehicles, p=shares)
        self.town_cars = [np.flatnonzero(self.vehicle_town == t) for t in range(len(TOWNS))]
        weights = 1.0 / (np.arange(len(self.plates)) + RANK_OFFSET)
        self.cumulative = np.cumsum(weights / weights.sum())
        hourly = np.array(HOURLY)
        self.hourly = hourly / hourly.sum()

    def rows(self, day: dt.date, count: int) -> Iterator[str]:
        """``count`` COPY text lines (tab-separated, in `_COLUMNS` order) for ``day``, in time order."""
        rng = self.rng
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        seconds = np.sort(rng.choice(24, size=count, p=self.hourly) * 3600.0 + rng.uniform(0, 3600, count))
        plate_idx = np.minimum(np.searchsorted(self.cumulative, rng.random(count)), len(self.plates) - 1)
        own = rng.random(count) < OWN_TOWN
        car = rng.integers(0, len(self.vehicles), count)
        for j in np.flatnonzero(own):
            cars = self.town_cars[self.plate_town[plate_idx[j]]]
            if len(cars):
                car[j] = cars[int(rng.integers(len(cars)))]
        town = self.vehicle_town[car]
        lat0 = np.array([TOWNS[t].lat for t in town])
        lon0 = np.array([TOWNS[t].lon for t in town])
        radius = np.array([TOWNS[t].radius_km for t in town])
        lat = lat0 + rng.normal(0, 1, count) * radius / KM_PER_DEG_LAT
        lon = lon0 + rng.normal(0, 1, count) * radius / (KM_PER_DEG_LAT * np.cos(np.radians(lat0)))
        confidence = np.clip(rng.beta(18, 1.5, count), 0.5, 0.999)
        slipped = rng.random(count) < self.plan.misread
        frames = rng.integers(2, 12, count)
        ids = rng.bytes(16 * count).hex()
        speed = rng.uniform(0, 70, count)
        heading = rng.uniform(0, 360, count)
        for i in range(count):
            t = start + float(seconds[i])
            true_plate = self.plates[plate_idx[i]]
            plate = misread(true_plate, rng) if slipped[i] else true_plate
            conf = float(confidence[i])
            alt = true_plate if plate != true_plate else misread(plate, rng)
            candidates = f'[{{"text": "{plate}", "confidence": {conf:.4f}}}'
            if alt != plate:
                candidates += f', {{"text": "{alt}", "confidence": {conf * 0.3:.4f}}}'
            candidates += "]"
            h = ids[32 * i: 32 * i + 32]
            event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
            when = event_iso(t)
            position = (f'{{"time": "{when}", "lat": {lat[i]:.7f}, "lon": {lon[i]:.7f}, "fix": "3d", '
                        f'"speed_kmh": {speed[i]:.2f}, "heading_deg": {heading[i]:.1f}, "sats": 9, "hdop": 0.9}}')
            yield "\t".join((
                when, event_id, self.vehicles[car[i]], "front" if i % 3 else "rear", plate, plate_key(plate),
                f"{conf:.4f}", candidates, event_iso(t - 0.8), str(int(frames[i])), "{412,630,188,44}", "md",
                f"{lat[i]:.7f}", f"{lon[i]:.7f}", position, event_iso(t + 0.4),
            )) + "\n"


def _partition_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() != (None,)


def load_day(conn: psycopg.Connection, maker: ReadMaker, day: dt.date, count: int,
             batch: int = 20_000) -> DayLoaded:
    """COPY ``count`` reads of ``day`` into its partition (new: a table attached after the copy)."""
    started = time.monotonic()
    name = partition_name("reads", day)
    low = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    high = low + dt.timedelta(days=1)
    attach = not _partition_exists(conn, name)
    table = sql.Identifier(name)
    with conn.transaction():
        if attach:
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE reads INCLUDING DEFAULTS)").format(table))
            # The partition's bound as a constraint, so that ATTACH need not scan the table to check it.
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (time >= {} AND time < {})").format(
                table, sql.Identifier(f"{name}_bound"), sql.Literal(low), sql.Literal(high)))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
            chunk: list[str] = []
            for line in maker.rows(day, count):
                chunk.append(line)
                if len(chunk) >= batch:
                    copy.write("".join(chunk))
                    chunk = []
            if chunk:
                copy.write("".join(chunk))
        if attach:
            conn.execute(sql.SQL("ALTER TABLE reads ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                table, sql.Literal(low), sql.Literal(high)))
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(f"{name}_bound")))
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    return DayLoaded(day, count, time.monotonic() - started, attach)


def fill(dsn: str, plan: FillPlan, progress: Callable[[DayLoaded], None] | None = None) -> list[DayLoaded]:
    """Load the plan's reads day by day (each day one transaction); returns what each day took."""
    from picar.hq.store import connect

    maker = ReadMaker(plan)
    done = []
    with connect(dsn) as conn:
        for day, count in zip(plan.day_list(), plan.per_day(), strict=True):
            loaded = load_day(conn, maker, day, count)
            done.append(loaded)
            if progress is not None:
                progress(loaded)
        conn.execute("ANALYZE reads")
    return done


def fill_main(argv: list[str]) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="picar hq fill-reads",
                                 description="Bulk-load made-up reads into HQ's database (for bench-search).")
    ap.add_argument("--dsn", required=True, help="libpq connection string of a migrated HQ database")
    d = FillPlan()
    ap.add_argument("--reads", type=int, default=d.reads, help=f"how many (default {d.reads:,})")
    ap.add_argument("--days", type=int, default=d.days, help=f"over how many days up to today (default {d.days})")
    ap.add_argument("--end", type=dt.date.fromisoformat, help="the last day, YYYY-MM-DD (default today, UTC)")
    ap.add_argument("--vehicles", type=int, default=d.vehicles, help=f"cars (default {d.vehicles})")
    ap.add_argument("--population", type=int, default=d.population,
                    help=f"distinct registered plates (default {d.population:,})")
    ap.add_argument("--misread", type=float, default=d.misread,
                    help=f"share of reads with a look-alike slip (default {d.misread})")
    ap.add_argument("--seed", type=int, default=d.seed)
    args = ap.parse_args(argv)
    try:
        plan = FillPlan(reads=args.reads, days=args.days, end=args.end, vehicles=args.vehicles,
                        population=args.population, misread=args.misread, seed=args.seed)
    except ValueError as exc:
        print(f"picar hq fill-reads: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()

    def show(d: DayLoaded) -> None:
        print(f"{d.day}: {d.reads:,} reads in {d.seconds:.1f} s ({'attached' if d.attached else 'existing'})",
              flush=True)

    try:
        done = fill(args.dsn, plan, show)
    except psycopg.Error as exc:
        print(f"picar hq fill-reads: {exc}".strip(), file=sys.stderr)
        return 1
    total = sum(d.reads for d in done)
    print(f"{total:,} reads in {len(done)} days, {time.monotonic() - started:.0f} s")
    return 0
