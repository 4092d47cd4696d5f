"""HQ's schema migrations: Alembic, with its scripts inside the package (picar/hq/store/migrations), run from
Python on a DSN: by `picar hq db upgrade --dsn ...` and by every ingest worker at start.

Two workers starting at once must not both migrate: the upgrade holds a PostgreSQL advisory lock, so the
second waits and then finds nothing to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

log = logging.getLogger("picar.hq")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x50494341_52485121 & 0x7FFF_FFFF_FFFF_FFFF  # "PICARHQ!": any fixed bigint, ours alone


def _engine(dsn: str) -> sa.Engine:
    # The DSN is libpq's (key=value or a postgresql:// URL); psycopg parses it, SQLAlchemy only wraps it.
    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn),
                            poolclass=sa.pool.NullPool)


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision the package carries."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS}")
    return rev


def current(dsn: str) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = _engine(dsn)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(dsn: str, revision: str = "head") -> str:
    """Bring the database to ``revision``; returns the revision it is at afterwards."""
    engine = _engine(dsn)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            conn.commit()
            try:
                before = MigrationContext.configure(conn).get_current_revision()
                command.upgrade(_config(conn), revision)
                conn.commit()
                after = MigrationContext.configure(conn).get_current_revision()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()
    if before != after:
        log.info("HQ database migrated from %s to %s", before or "empty", after)
    return str(after)


def downgrade(dsn: str, revision: str) -> str | None:
    """Take the database back to ``revision`` ("base": empty). For tests and recovery only."""
    engine = _engine(dsn)
    try:
        with engine.connect() as conn:
            command.downgrade(_config(conn), revision)
            conn.commit()
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
