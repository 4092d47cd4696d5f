"""HQ's retention: how long each kind is kept, enforced by dropping whole day partitions (reads, positions)
and by deleting rows (hits with their dispositions, images, K9 deployments, heat alarms). Each purge that
removed something is written to `purge_log` and to the log.

Reads are the reads of every vehicle passed, innocent or not: a hit keeps its own copy of what was read
(plate, time, place, the car's whole payload), so reads can go sooner than hits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg

from picar.hq.store import partitions

log = logging.getLogger("picar.hq")


@dataclass(frozen=True)
class Retention:
    """Days each kind is kept at HQ."""

    reads_days: int = 30
    positions_days: int = 30
    hits_days: int = 730
    images_days: int = 365
    k9_days: int = 1825
    heat_days: int = 365

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"retention {name} = {value!r}: a whole number of days, at least 1")
        if self.images_days > self.hits_days:
            raise ValueError(f"retention images_days ({self.images_days}) longer than hits_days ({self.hits_days}): "
                             "an image would outlive its hit")

    def cutoff(self, kind: str, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(days=int(getattr(self, f"{kind}_days")))


@dataclass(frozen=True)
class Purged:
    kind: str
    action: str  # "drop partition" or "delete"
    cutoff: dt.datetime
    rows: int
    detail: str | None = None


# kind -> (table, the moment a row's age counts from)
_DELETED = {
    "hits": ("hits", "time"),
    "images": ("images", "time"),
    "k9": ("k9_deployments", "COALESCE(ended_at, started_at, received_at)"),
    "heat": ("heat_alarms", "time"),
}


def purge(conn: psycopg.Connection, policy: Retention, now: dt.datetime | None = None) -> list[Purged]:
    """Remove everything older than ``policy`` allows; returns what went (also in purge_log and the log).
    ``conn`` must be in autocommit mode: each step is its own transaction."""
    now = now or dt.datetime.now(dt.UTC)
    done: list[Purged] = []
    for kind in ("reads", "positions"):
        cutoff = policy.cutoff(kind, now)
        for part, rows in partitions.drop_before(conn, kind, cutoff):
            done.append(_logged(conn, Purged(kind, "drop partition", cutoff, rows, part.name)))
    for kind, (table, column) in _DELETED.items():
        cutoff = policy.cutoff(kind, now)
        with conn.transaction():
            if kind == "hits":  # a hit's dispositions and images go with it
                conn.execute(f"DELETE FROM dispositions WHERE hit_event_id IN (SELECT event_id FROM hits "
                             f"WHERE {column} < %s)", (cutoff,))
                conn.execute(f"DELETE FROM images WHERE hit_event_id IN (SELECT event_id FROM hits "
                             f"WHERE {column} < %s)", (cutoff,))
            rows = conn.execute(f"DELETE FROM {table} WHERE {column} < %s", (cutoff,)).rowcount
        if rows:
            done.append(_logged(conn, Purged(kind, "delete", cutoff, rows)))
    return done


def _logged(conn: psycopg.Connection, p: Purged) -> Purged:
    with conn.transaction():
        conn.execute("INSERT INTO purge_log (kind, action, cutoff, rows, detail) VALUES (%s, %s, %s, %s, %s)",
                     (p.kind, p.action, p.cutoff, p.rows, p.detail))
    log.info("retention: %s %s: %d rows older than %s%s", p.kind, p.action, p.rows, p.cutoff.isoformat(),
             f" ({p.detail})" if p.detail else "")
    return p


def purge_log(conn: psycopg.Connection, limit: int = 100) -> list[Purged]:
    rows = conn.execute("SELECT kind, action, cutoff, rows, detail FROM purge_log ORDER BY at DESC, id DESC LIMIT %s",
                        (limit,)).fetchall()
    return [Purged(*r) for r in rows]


def oldest_kept(policy: Retention, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """What ingest refuses to store on arrival (acknowledging it): reads and positions older than these."""
    now = now or dt.datetime.now(dt.UTC)
    return {kind: policy.cutoff(kind, now) for kind in ("reads", "positions")}
