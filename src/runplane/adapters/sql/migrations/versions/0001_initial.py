"""The initial schema: runtimes, operations, api_keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def _id(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    _create_runtimes()
    _create_operations()
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("team_id", sa.String(128), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )


def _create_runtimes() -> None:
    op.create_table(
        "runtimes",
        sa.Column("runtime_id", _id(128), nullable=False),
        sa.Column("team_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("driver", sa.String(64), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("container_id", sa.String(256), nullable=True),
        sa.Column("engine_endpoint", sa.Text(), nullable=True),
        sa.Column("engine_health", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("stopped_at", Timestamp, nullable=True),
        sa.Column("removed_at", Timestamp, nullable=True),
        sa.Column("last_op_at", Timestamp, nullable=True),
        sa.Column("status_deadline", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("runtime_id", name="pk_runtimes"),
    )
    op.create_index("ix_runtimes_team_id_runtime_id", "runtimes", ["team_id", "runtime_id"])
    op.create_index("ix_runtimes_status_runtime_id", "runtimes", ["status", "runtime_id"])
    op.create_index("ix_runtimes_status_deadline", "runtimes", ["status_deadline"])


def _create_operations() -> None:
    op.create_table(
        "operations",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("operation_id", sa.String(128), nullable=False),
        sa.Column("runtime_id", sa.String(128), nullable=False),
        sa.Column("team_id", sa.String(128), nullable=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("op_source", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(512), nullable=True),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status_from", sa.String(32), nullable=True),
        sa.Column("status_to", sa.String(32), nullable=True),
        sa.Column("container_id", sa.String(256), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_operations"),
        sa.UniqueConstraint("operation_id", name="uq_operations_operation_id"),
        sa.UniqueConstraint("job_id", name="uq_operations_job_id"),
    )
    op.create_index(
        "ix_operations_runtime_id_finished_at",
        "operations",
        ["runtime_id", "finished_at", "seq"],
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("operations")
    op.drop_table("runtimes")
