"""The search benchmark's tools on a real PostgreSQL (docs/scale.md): `picar hq fill-reads` loads made-up reads into
day partitions that the console's search finds (look-alike slips included), and `picar hq bench-search` times
every kind of search, each one audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from picar.hq.bench_search import bench_main
from picar.hq.fill_reads import FillPlan, fill, misread, plate_population
from picar.hq.store import connect
from picar.hq.store.partitions import existing
from picar.hq.store.plates import plate_key
from picar.hq.store.queries import search_reads
from picar.hq.store.records import ReadQuery, Searcher

pytestmark = pytest.mark.timeout(180)
PLAN = FillPlan(reads=6000, days=3, end=dt.date(2026, 11, 20), vehicles=5, population=400, misread=0.15, seed=3)
WHO = Searcher("tester", "CASE-1", "test")


def test_a_look_alike_slip_changes_one_character_into_its_class() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    assert misread("ABC", rng) == "A8C"  # B is the only look-alike
    assert misread("XYZ", rng) == "XY2"
    assert misread("MMM", rng) == "MMM"  # nothing to confuse
    slipped = misread("C0B123", rng)
    assert slipped != "C0B123" and plate_key(slipped) == plate_key("C0B123")
    plates = plate_population(300, rng)
    assert len(set(plates)) == 300 and all(p.isalnum() and p.isupper() or p.isdigit() for p in plates)


def test_fill_reads_loads_day_partitions_that_the_console_search_finds(hq_dsn: str) -> None:
    done = fill(hq_dsn, PLAN)
    assert [d.reads for d in done] == PLAN.per_day() and sum(PLAN.per_day()) == 6000
    assert all(d.attached for d in done)  # no partition existed: each day copied into a table, then attached
    with connect(hq_dsn) as conn:
        assert [p.day for p in existing(conn, "reads")] == PLAN.day_list()
        assert conn.execute("SELECT count(*), count(DISTINCT event_id), min(time)::date, max(time)::date "
                            "FROM reads").fetchone() == (6000, 6000, dt.date(2026, 11, 18), dt.date(2026, 11, 20))
        bad_keys = conn.execute("SELECT plate, plate_key FROM reads").fetchall()
        assert all(plate_key(p) == k for p, k in bad_keys)
        # Positions around Moldova.
        south, north, west, east = conn.execute("SELECT min(lat), max(lat), min(lon), max(lon) FROM reads").fetchone()
        assert 45.4 < south < north < 48.6 and 26.5 < west < east < 30.3
        # A plate read both right and with a slip: the exact search finds one spelling, the confusable both.
        key, plate = conn.execute(
            "SELECT plate_key, min(plate) FROM reads GROUP BY plate_key HAVING count(DISTINCT plate) > 1 "
            "LIMIT 1").fetchone()
        exact = search_reads(conn, ReadQuery(plate=plate), WHO).reads
        both = search_reads(conn, ReadQuery(plate=plate, confusable=True), WHO).reads
        assert {r.plate for r in exact} == {plate}
        assert len({r.plate for r in both}) > 1 and {plate_key(r.plate) for r in both} == {key}


def test_bench_search_times_every_kind_and_each_search_is_audited(hq_dsn: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fill(hq_dsn, PLAN)
    assert bench_main(["--dsn", hq_dsn, "--queries", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert set(kinds) == {"exact", "exact_week", "exact_car", "exact_area", "confusable", "confusable_week",
                          "prefix_week", "prefix", "area_hour"}
    assert all(k["ms"]["n"] == 4 and 0 < k["ms"]["p50"] <= k["ms"]["p95"] <= k["ms"]["p99"] for k in kinds.values())
    assert kinds["prefix"]["found_mean"] > 0  # four characters of a stored plate find at least that plate
    assert report["server"]["partitions"] == 3 and report["server"]["reads_estimate"] == 6000
    with connect(hq_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM search_audit WHERE username = 'bench'").fetchone() == (36,)
    assert bench_main(["--dsn", hq_dsn, "--kinds", "nonsense"]) == 1
