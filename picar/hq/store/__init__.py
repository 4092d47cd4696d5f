"""HQ's store on PostgreSQL (psycopg 3): the schema and its Alembic migrations, what ingest writes and what the
console reads (docs/hq.md).

    migrate.py     `upgrade(dsn)`: Alembic, scripts in migrations/ (run by `picar hq db upgrade` and ingest)
    events.py      a car's message -> a typed record (BadEvent names the field)
    writes.py      `write_batch`: one transaction per batch, each event stored once (ON CONFLICT DO NOTHING)
    partitions.py  daily partitions of reads and positions: ahead, on demand, dropped by retention
    retention.py   per-kind retention and the purge log
    plates.py      the look-alike fold (`plate_key`) and operators' plate patterns
    records.py     the dataclasses the console reads
    queries.py     fleet, hits with evidence, the audited search, K9 reports, positions, watchlists
    accounts.py    console accounts with argon2id password hashes
"""

from __future__ import annotations

import psycopg


def connect(dsn: str, *, autocommit: bool = True, application_name: str = "picar-hq") -> psycopg.Connection:
    """A connection to HQ's database (libpq DSN: ``host=... dbname=...`` or ``postgresql://...``); every time
    read back is UTC."""
    conn = psycopg.connect(dsn, autocommit=autocommit, application_name=application_name)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn
