"""After a load run (hw_sim/fleet_load.py): is every event each simulated car produced in PostgreSQL exactly once,
and how long did it take to get there.

The cars' outboxes are the truth of what was produced: every event is stored there before it is sent, and the
generator never purges them. Each is read straight from its SQLite file and compared, kind by kind, with
the rows of HQ's tables for those cars. Lag is measured two ways: in the database (`received_at`, set by the
ingest's transaction, minus the event's own time) and at the car (HQ's end-to-end acknowledgement, stored
in the outbox as `hq_acked_at`, minus the moment the event was stored: commit, ack message and broker
included).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from picar.tools.stats import percentiles

# The table each event kind lands in (positions are QoS 0 and not in the outbox: counted, not checked).
TABLES = {"read": "reads", "hit": "hits", "image": "images", "disposition": "dispositions"}


@dataclass
class Produced:
    """What the outboxes hold: event ids by kind, and the end-to-end lag of those produced in the window."""

    ids: dict[str, set[str]] = field(default_factory=dict)
    duplicates_in_outbox: int = 0
    e2e_lag_s: list[float] = field(default_factory=list)
    unacknowledged: int = 0  # HQ never acknowledged them (still in a backlog at the end)


def read_outboxes(outbox_dir: Path, since: float, until: float) -> Produced:
    """Every event of every ``*.sqlite`` outbox in ``outbox_dir``; the lag of those created in [since, until)."""
    out = Produced()
    for path in sorted(outbox_dir.glob("*.sqlite")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT event_id, topic, created_at, hq_acked_at FROM events").fetchall()
        finally:
            db.close()
        for event_id, topic, created, hq_acked in rows:
            kind = topic.rsplit("/", 1)[-1]
            bucket = out.ids.setdefault(kind, set())
            if event_id in bucket:
                out.duplicates_in_outbox += 1
            bucket.add(event_id)
            if hq_acked is None:
                out.unacknowledged += 1
            elif since <= created < until:
                out.e2e_lag_s.append(hq_acked - created)
    return out


@dataclass(frozen=True)
class KindCheck:
    kind: str
    produced: int
    stored: int
    lost: int
    duplicated: int
    foreign: int  # rows of these cars in the window that no outbox produced (must be 0)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "produced": self.produced, "stored": self.stored, "lost": self.lost,
                "duplicated": self.duplicated, "foreign": self.foreign}


def check_database(conn: psycopg.Connection, produced: Produced, vehicles: list[str],
                   since: dt.datetime) -> list[KindCheck]:
    """Each kind's events against its table: lost (produced, not stored), duplicated (stored more than once)."""
    results = []
    for kind, table in TABLES.items():
        want = produced.ids.get(kind, set())
        rows = conn.execute(f"SELECT event_id, count(*) FROM {table} WHERE vehicle = ANY(%s) AND time >= %s "
                            "GROUP BY event_id", (vehicles, since)).fetchall()
        stored = {r[0]: int(r[1]) for r in rows}
        results.append(KindCheck(
            kind, len(want), len(stored), len(want - stored.keys()),
            sum(n - 1 for n in stored.values() if n > 1), len(stored.keys() - want)))
    return results


def lag_in_database(conn: psycopg.Connection, vehicles: list[str], since: dt.datetime,
                    until: dt.datetime) -> dict[str, Any]:
    """received_at - time of the reads produced in [since, until): overall and per minute of the run."""
    rows = conn.execute(
        "SELECT extract(epoch FROM received_at - time)::float8 FROM reads WHERE vehicle = ANY(%s) AND time >= %s "
        "AND time < %s", (vehicles, since, until)).fetchall()
    overall = percentiles([r[0] for r in rows], 3)
    minutes = conn.execute(
        "SELECT date_trunc('minute', time) AS m, count(*), percentile_cont(0.95) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM received_at - time)) FROM reads WHERE vehicle = ANY(%s) AND time >= %s "
        "AND time < %s GROUP BY m ORDER BY m", (vehicles, since, until)).fetchall()
    return {"reads": overall, "per_minute": [{"minute": m.isoformat(), "reads": int(n), "p95_s": round(p, 3)}
                                             for m, n, p in minutes]}


def positions_stored(conn: psycopg.Connection, vehicles: list[str], since: dt.datetime) -> int:
    row = conn.execute("SELECT count(*) FROM positions WHERE vehicle = ANY(%s) AND time >= %s",
                       (vehicles, since)).fetchone()
    return int(row[0]) if row else 0


def summarise(checks: list[KindCheck]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in checks:
        total.update(produced=c.produced, stored=c.stored, lost=c.lost, duplicated=c.duplicated, foreign=c.foreign)
    return dict(total)


def table_sizes(conn: psycopg.Connection) -> dict[str, dict[str, int]]:
    """Rows and bytes on disk (with indexes) of the partitioned tables and the images: what a day costs."""
    out = {}
    for table in ("reads", "positions"):
        row = conn.execute("SELECT coalesce(sum(c.reltuples), 0)::bigint, "
                           "coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_inherits i "
                           "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
                           (table,)).fetchone()
        out[table] = {"rows": int(row[0]) if row else 0, "bytes": int(row[1]) if row else 0}
    row = conn.execute("SELECT count(*), pg_total_relation_size('images') FROM images").fetchone()
    out["images"] = {"rows": int(row[0]) if row else 0, "bytes": int(row[1]) if row else 0}
    return out
