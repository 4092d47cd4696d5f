"""Watchlist imports awaiting review (table watchlist_drafts, migration 0002): saved by whoever imported them,
published or discarded by a supervisor. Drafts nobody published are deleted after DRAFT_DAYS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

DRAFT_DAYS = 14
_COLUMNS = "id, created_at, created_by, filename, format, entries, invalid, gave_up, published_id, discarded_at"


@dataclass(frozen=True)
class Draft:
    """An import as it was reviewed; its entries come from `draft_records`."""

    id: int
    created_at: dt.datetime
    created_by: str
    filename: str
    format: str
    entries: int
    invalid: list[dict[str, Any]]  # {"line": int | None, "message": str}
    gave_up: bool
    published_id: int | None
    discarded_at: dt.datetime | None

    @property
    def open(self) -> bool:
        return self.published_id is None and self.discarded_at is None


def save_draft(conn: psycopg.Connection, *, created_by: str, filename: str, format: str,
               records: list[dict[str, Any]], invalid: list[dict[str, Any]], gave_up: bool) -> Draft:
    """Keep an import for review; old drafts nobody published go at the same time."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Draft)) as cur:
        cur.execute("DELETE FROM watchlist_drafts WHERE published_id IS NULL AND created_at < now() - %s",
                    (dt.timedelta(days=DRAFT_DAYS),))
        row = cur.execute(
            "INSERT INTO watchlist_drafts (created_by, filename, format, records, invalid, gave_up, entries) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (created_by, filename, format, Jsonb(records), Jsonb(invalid), gave_up, len(records))).fetchone()
    assert row is not None
    return row


def draft(conn: psycopg.Connection, draft_id: int) -> Draft | None:
    with conn.cursor(row_factory=class_row(Draft)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM watchlist_drafts WHERE id = %s", (draft_id,)).fetchone()


def draft_records(conn: psycopg.Connection, draft_id: int) -> list[dict[str, Any]]:
    row = conn.execute("SELECT records FROM watchlist_drafts WHERE id = %s", (draft_id,)).fetchone()
    return [] if row is None else list(row[0])


def open_drafts(conn: psycopg.Connection, limit: int = 20) -> list[Draft]:
    """Imports neither published nor discarded, newest first."""
    with conn.cursor(row_factory=class_row(Draft)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM watchlist_drafts WHERE published_id IS NULL AND "
                           "discarded_at IS NULL ORDER BY created_at DESC, id DESC LIMIT %s", (limit,)).fetchall()


def close_draft(conn: psycopg.Connection, draft_id: int, *, published_id: int | None = None) -> bool:
    """Mark an open draft published (as version row `published_id`) or, without one, discarded; False if it
    was no longer open."""
    with conn.transaction():
        cur = conn.execute("UPDATE watchlist_drafts SET published_id = %s, discarded_at = CASE WHEN %s::bigint IS "
                           "NULL THEN now() END WHERE id = %s AND published_id IS NULL AND discarded_at IS NULL",
                           (published_id, published_id, draft_id))
    return cur.rowcount == 1
