"""SQLite units of work keep their thread's connection between batches, and a
connection that broke is replaced, never handed to the next batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from runplane.adapters.sql.engine import SqlDatabase
from runplane.domain.errors import StoreUnavailable


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    database = SqlDatabase.from_url(f"sqlite:///{tmp_path / 'batches.db'}")
    await database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
    try:
        yield database
    finally:
        await database.dispose()


def dbapi_of(connection: Connection) -> object:
    return connection.connection.dbapi_connection


async def test_batches_reuse_the_connection(database: SqlDatabase) -> None:
    seen = {await database.read(dbapi_of) for _ in range(20)}
    # Four threads at most, each with its own connection, reused batch after batch.
    assert 1 <= len(seen) <= 4
    written = {await database.write(dbapi_of) for _ in range(20)}
    assert 1 <= len(written) <= 4


async def test_a_failed_statement_replaces_the_connection_and_others_still_commit(
    database: SqlDatabase,
) -> None:
    before = await database.write(dbapi_of)

    def broken(connection: Connection) -> None:
        connection.exec_driver_sql("INSERT INTO missing VALUES (1)")

    with pytest.raises(StoreUnavailable, match="no such table"):
        await database.write(broken)
    after = {await database.write(dbapi_of) for _ in range(8)}
    assert before not in after
    await database.write(lambda c: c.execute(text("INSERT INTO t VALUES (1)")))
    assert await database.read(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar()) == 1


async def test_an_invalidated_connection_is_not_used_again(database: SqlDatabase) -> None:
    def invalidate(connection: Connection) -> object:
        dbapi = dbapi_of(connection)
        connection.invalidate()
        return dbapi

    gone = await database.read(invalidate)
    assert gone not in {await database.read(dbapi_of) for _ in range(8)}
    assert await database.read(lambda c: c.execute(text("SELECT 1")).scalar()) == 1


async def test_a_read_leaves_no_transaction_open(database: SqlDatabase) -> None:
    await database.read(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar())
    # A writer's BEGIN IMMEDIATE would wait on a reader's open transaction.
    assert not await database.read(lambda c: c.in_transaction())
    await database.write(lambda c: c.execute(text("INSERT INTO t VALUES (2)")))
