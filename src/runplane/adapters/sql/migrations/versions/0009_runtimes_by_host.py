"""Runtimes by host: an index on `runtimes (host_id, status)`, for placement's
live count per host (one GROUP BY) and `GET /v1/runtimes?host_id=`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runtimes_host_id_status", "runtimes", ["host_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_runtimes_host_id_status", table_name="runtimes")
