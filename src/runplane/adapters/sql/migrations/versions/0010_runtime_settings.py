"""Runtime labels, timeouts and idle rules (issue 16): their columns on
`runtimes`, an index for the due deadlines and one for the idle-watched
runtimes, and `runtime_labels` for selection by label.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runtimes") as batch:
        batch.add_column(sa.Column("labels", _json(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("on_timeout", sa.String(16), nullable=True))
        batch.add_column(sa.Column("idle_after_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("idle_action", sa.String(16), nullable=True))
        batch.add_column(sa.Column("active_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runtimes_timeout_at", "runtimes", ["timeout_at"])
    op.create_index("ix_runtimes_status_idle_after_s", "runtimes", ["status", "idle_after_s"])
    op.create_table(
        "runtime_labels",
        sa.Column(
            "runtime_id",
            sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("key", sa.String(317), nullable=False),
        sa.Column("value", sa.String(63), nullable=False),
        sa.PrimaryKeyConstraint("runtime_id", "key", name="pk_runtime_labels"),
    )
    op.create_index("ix_runtime_labels_key_value", "runtime_labels", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_runtime_labels_key_value", table_name="runtime_labels")
    op.drop_table("runtime_labels")
    op.drop_index("ix_runtimes_status_idle_after_s", table_name="runtimes")
    op.drop_index("ix_runtimes_timeout_at", table_name="runtimes")
    with op.batch_alter_table("runtimes") as batch:
        for name in ("active_at", "idle_action", "idle_after_s", "on_timeout", "timeout_at"):
            batch.drop_column(name)
        batch.drop_column("labels")
