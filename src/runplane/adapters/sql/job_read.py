"""A stream job's first read: the runtime's record and whether the job's
job_id is already claimed in the record's team, in one statement.

A job names no team (an admin's or the system's): the record says which team
its job_id belongs to. Asked as two point reads, that was a second statement
on SQLite and a second round trip on Postgres, for an answer that is nearly
always "not claimed". The one-row derived table keeps a row when the record is
absent, so the claim is then looked up among the calls of no team ("")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, literal, select

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.tables import operations, runtimes

_CLAIMED = (
    select(operations.c.seq)
    .where(
        (operations.c.job_team == func.coalesce(runtimes.c.team_id, ""))
        & (operations.c.job_id == bindparam("job_id"))
    )
    .exists()
    .label("job_claimed")
)
_ONE = select(literal(1).label("one")).subquery("one_row")

GET_FOR_JOB = DirectStatement(
    select(*runtimes.c, _CLAIMED).select_from(
        _ONE.outerjoin(runtimes, runtimes.c.runtime_id == bindparam("runtime_id"))
    ),
    returns=(*runtimes.c, _CLAIMED),
)


def split_row(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """(the record's row or None, claimed)."""
    if row is None:  # never: the derived table always gives one row
        return None, False
    claimed = bool(row.pop("job_claimed"))
    return (row if row["runtime_id"] is not None else None), claimed
