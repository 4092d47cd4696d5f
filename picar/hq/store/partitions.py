"""Daily partitions of the tables partitioned by time (reads, positions): created ahead and on demand, and
dropped whole by retention.

A partition is named ``{table}_pYYYYMMDD`` and holds [that day 00:00 UTC, the next day 00:00 UTC). There is
no DEFAULT partition: a row for a day without a partition fails, so the writer creates the days a batch
needs first (`ensure`). Creating a partition locks its parent briefly; concurrent workers take an advisory
lock so two never create the same one at once.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

PARTITIONED = ("reads", "positions")
AHEAD_DAYS = 2  # days after today created in advance, so the first event of a day does not wait for DDL
_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")
_LOCK = 0x5049_4341_5250_0000  # advisory lock space for partition DDL, "PICARP"


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    day: dt.date

    @property
    def end(self) -> dt.datetime:
        """The first moment after the partition (its upper bound, exclusive)."""
        return _midnight(self.day + dt.timedelta(days=1))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _check(table: str) -> None:
    if table not in PARTITIONED:
        raise ValueError(f"table {table!r} is not partitioned by day (only {', '.join(PARTITIONED)})")


def existing(conn: psycopg.Connection, table: str) -> list[Partition]:
    """The day partitions of ``table``, oldest first."""
    _check(table)
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", (table,)).fetchall()
    out = []
    for (name,) in rows:
        m = _NAME.match(name)
        if m and m["table"] == table:
            out.append(Partition(table, name, dt.datetime.strptime(m["day"], "%Y%m%d").date()))
    return sorted(out, key=lambda p: p.day)


def ensure(conn: psycopg.Connection, table: str, days: Iterable[dt.date]) -> list[str]:
    """Create the missing partitions of ``table`` for ``days``, each in its own committed transaction;
    returns the names created. ``conn`` must not be inside a transaction (autocommit or idle)."""
    _check(table)
    created = []
    for day in sorted(set(days)):
        name = partition_name(table, day)
        if _exists(conn, name):
            continue  # the usual case, answered without the lock
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            if _exists(conn, name):  # another worker made it while this one waited
                continue
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(name), sql.Identifier(table),
                sql.Literal(_midnight(day)), sql.Literal(_midnight(day + dt.timedelta(days=1)))))
            created.append(name)
    return created


def _exists(conn: psycopg.Connection, name: str) -> bool:
    # pg_class read with the statement's snapshot: to_regclass() would answer from this session's cache, which
    # still says "no such table" after another session created it while we waited for the lock.
    return conn.execute("SELECT 1 FROM pg_class WHERE relname = %s AND relnamespace = current_schema()::regnamespace",
                        (name,)).fetchone() is not None


class KnownPartitions:
    """The days whose partitions a writer has seen exist, so that a batch costs no DDL check when they all do.

    An entry is trusted for ``ttl_s`` only: retention drops old days (never one a kept event needs, but
    another worker with another retention could), so the check runs again now and then."""

    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._seen: dict[tuple[str, dt.date], float] = {}

    def ensure(self, conn: psycopg.Connection, table: str, days: Iterable[dt.date]) -> list[str]:
        """`ensure` for the days not seen within ``ttl_s``; returns the names created."""
        now = self._clock()
        wanted = {d for d in days if now - self._seen.get((table, d), -math.inf) > self.ttl_s}
        if not wanted:
            return []
        created = ensure(conn, table, wanted)
        for day in wanted:
            self._seen[(table, day)] = now
        return created


def ensure_ahead(conn: psycopg.Connection, today: dt.date, ahead: int = AHEAD_DAYS) -> list[str]:
    """Today's partitions and ``ahead`` days after, for every partitioned table."""
    days = [today + dt.timedelta(days=i) for i in range(ahead + 1)]
    return [name for table in PARTITIONED for name in ensure(conn, table, days)]


def drop_before(conn: psycopg.Connection, table: str, cutoff: dt.datetime) -> list[tuple[Partition, int]]:
    """Drop every partition of ``table`` that ends at or before ``cutoff`` (all its rows are older);
    returns each with the rows it held. Each drop is its own transaction."""
    dropped = []
    for part in existing(conn, table):
        if part.end > cutoff:
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(part.name))).fetchone()
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(part.name)))
        dropped.append((part, int(rows[0]) if rows else 0))
    return dropped
