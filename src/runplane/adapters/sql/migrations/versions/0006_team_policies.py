"""Team policies: what a team key may run, and the team's quotas.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "team_policies",
        sa.Column(
            "team_id",
            sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("commands", _json(), nullable=False),
        sa.Column("images", _json(), nullable=False),
        sa.Column("networks", _json(), nullable=False),
        sa.Column("max_runtimes", sa.Integer(), nullable=True),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("team_id", name="pk_team_policies"),
    )


def downgrade() -> None:
    op.drop_table("team_policies")
