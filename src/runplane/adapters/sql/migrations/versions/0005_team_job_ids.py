"""Job ids unique per team: (job_team, job_id) replaces the unique job_id.

Before, a job_id (a REST Idempotency-Key, a stream job_id) was unique across
every team, so one team's key could replay, read or block another team's call.

`job_team` is a new non-null column: the entry's `team_id`, or "" for a call of
no team (an admin's call on a runtime that does not exist). A non-null column,
not `team_id` itself, because NULLs never collide in a unique key, on SQLite
and Postgres alike: the calls of no team would lose their idempotency. "" is
never a team id (team ids are 1-64 of `[A-Za-z0-9_-]`).

Existing rows: `job_team = team_id`, and "" where `team_id` is NULL. Rows with a
NULL team were calls that found no runtime they could see (not_found, an
invalid request). They are not backfilled with the named runtime's team: such a
row may be another team's rejected call on that runtime, and in the runtime's
team it would answer that team's next call with the same job_id.

Downgrade fails if two teams have since used the same job_id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One batch: SQLite rebuilds the table once; Postgres runs plain ALTERs.
    # Every job_team is "" at first, and job_id is still unique then, so the new
    # constraint holds before the backfill below.
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("job_team", sa.String(128), nullable=False, server_default=""))
        batch.drop_constraint("uq_operations_job_id", type_="unique")
        batch.create_unique_constraint("uq_operations_job_team_job_id", ["job_team", "job_id"])
    op.execute("UPDATE operations SET job_team = team_id WHERE team_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint("uq_operations_job_team_job_id", type_="unique")
        batch.drop_column("job_team")
        batch.create_unique_constraint("uq_operations_job_id", ["job_id"])
