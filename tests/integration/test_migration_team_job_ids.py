"""Migration 0005 on a log written before it: job ids move into their team's
namespace (rows of no team into the namespace of no team), and from then on
the same job_id may be used by each team once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.tables import operations
from runplane.domain.errors import DuplicateJobId
from tests.support.postgres import PostgresServer
from tests.support.store_backends import T0, make_entry

OLD_ROW = {
    "runtime_id": "beta:web",
    "op": "stop",
    "op_source": "rest",
    "outcome": "failure",
    "error_code": "not_found",
    "error_message": "no such runtime",
    "source_ref": "",
    "reason": "requested",
    "actor": "",
    "details": {},
    "started_at": T0,
    "finished_at": T0,
}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"mg_{uuid.uuid4().hex[:10]}")


async def test_existing_job_ids_keep_their_team_and_no_team_its_own(url: str) -> None:
    await upgrade(url, "0004")
    database = SqlDatabase.from_url(url)
    try:
        async with database.writing() as connection:
            for operation_id, team_id, job_id in (
                ("old-beta", "beta", "k-1"),
                ("old-none", None, "k-2"),
                ("old-free", "beta", None),
            ):
                row = OLD_ROW | {"operation_id": operation_id, "team_id": team_id}
                await connection.execute(operations.insert().values(**row, job_id=job_id))
        await upgrade(url)
        async with database.reading() as connection:
            rows = await connection.execute(
                text("SELECT operation_id, job_team FROM operations ORDER BY operation_id")
            )
            assert sorted(tuple(row) for row in rows) == [
                ("old-beta", "beta"),
                ("old-free", "beta"),
                ("old-none", ""),
            ]
        log = SqlOperationLog(database)
        found = await log.find_by_job_id("beta", "k-1")
        assert found is not None
        assert found.operation_id == "old-beta"
        no_team = await log.find_by_job_id(None, "k-2")
        assert no_team is not None
        assert no_team.operation_id == "old-none"
        assert await log.find_by_job_id("beta", "k-2") is None  # never backfilled into beta
        await log.append(make_entry("new-alpha", team_id="alpha", job_id="k-1"))
        with pytest.raises(DuplicateJobId):
            await log.append(make_entry("new-beta", team_id="beta", job_id="k-1"))
        with pytest.raises(DuplicateJobId):
            await log.append(make_entry("new-none", team_id=None, job_id="k-2"))
    finally:
        await database.dispose()
