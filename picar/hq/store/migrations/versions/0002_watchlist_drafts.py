"""Watchlist imports awaiting review: what an operator imported (the entries the importer accepted and the
rows it refused, with their lines), until a supervisor publishes or discards it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

A draft is the importer's output, so what the supervisor reviews is byte for byte what is signed; the file
itself is not kept. A published draft points at the version it became.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE watchlist_drafts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    filename      text NOT NULL,
    format        text NOT NULL CHECK (format IN ('csv', 'ncic')),
    records       jsonb NOT NULL,            -- the entries as the importer returned them (snapshot format)
    invalid       jsonb NOT NULL,            -- [{"line": n | null, "message": "..."}]
    gave_up       boolean NOT NULL DEFAULT false,
    entries       integer NOT NULL,
    published_id  bigint REFERENCES watchlist_versions (id),
    discarded_at  timestamptz
);
CREATE INDEX watchlist_drafts_created ON watchlist_drafts (created_at);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE watchlist_drafts")
