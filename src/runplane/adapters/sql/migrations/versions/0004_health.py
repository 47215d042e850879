"""Health snapshots: the latest health event per runtime.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_snapshots",
        sa.Column(
            "runtime_id",
            sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("container_id", sa.String(256), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("summary", sa.String(32), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("runtime_id", name="pk_health_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("health_snapshots")
