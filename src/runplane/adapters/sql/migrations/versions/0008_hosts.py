"""Hosts: the `hosts` table, and `runtimes.host_id` (the host a runtime lives on).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column(
            "host_id",
            sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("admin_status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("cpus", sa.Float(), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("max_runtimes", sa.Integer(), nullable=True),
        sa.Column("drivers", _json(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host_id", name="pk_hosts"),
    )
    with op.batch_alter_table("runtimes") as batch:
        batch.add_column(sa.Column("host_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runtimes") as batch:
        batch.drop_column("host_id")
    op.drop_table("hosts")
