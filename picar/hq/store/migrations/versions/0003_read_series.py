"""The grammar series each read fitted (issue 19): `md.current`, `md.police`, `ro.county`, `ua.current`, ...,
or null for free text and for reads from cars that do not send it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Adding a nullable column to the partitioned `reads` adds it to every partition without rewriting them.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE reads ADD COLUMN series text")


def downgrade() -> None:
    op.execute("ALTER TABLE reads DROP COLUMN series")
