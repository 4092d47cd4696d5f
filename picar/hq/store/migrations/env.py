"""Alembic's environment for HQ's schema: run by picar.hq.store.migrate on the connection it opened (and
locked), never with a URL from an alembic.ini."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
