"""Snapshots: reusable templates taken from runtimes (domain/snapshots.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("snapshot_id", _id(128), nullable=False),
        sa.Column("team_id", _id(64), nullable=False),
        sa.Column("runtime_id", _id(128), nullable=False),
        sa.Column("driver", sa.String(32), nullable=False),
        sa.Column("host_id", sa.String(128), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", name="pk_snapshots"),
    )
    op.create_index("ix_snapshots_team_id_snapshot_id", "snapshots", ["team_id", "snapshot_id"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_team_id_snapshot_id", table_name="snapshots")
    op.drop_table("snapshots")
