"""SQLite units of work keep their thread's connection between batches, and a
connection that broke is replaced, never handed to the next batch."""

from __future__ import annotations

import threading
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
    broke: list[object] = []

    def broken(connection: Connection) -> None:
        broke.append(dbapi_of(connection))
        connection.exec_driver_sql("INSERT INTO missing VALUES (1)")

    with pytest.raises(StoreUnavailable, match="no such table"):
        await database.write(broken)
    after = {await database.write(dbapi_of) for _ in range(8)}
    assert broke[0] not in after
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


async def test_point_reads_run_on_the_loop_and_see_every_committed_write(
    database: SqlDatabase,
) -> None:
    loop_thread = threading.get_ident()
    for value in range(3):
        await database.write(lambda c, v=value: c.execute(text(f"INSERT INTO t VALUES ({v})")))
        thread, count = await database.read_point(
            lambda c: (threading.get_ident(), c.execute(text("SELECT count(*) FROM t")).scalar())
        )
        assert thread == loop_thread
        assert count == value + 1


async def test_a_point_read_the_loop_cannot_do_goes_to_a_thread(database: SqlDatabase) -> None:
    loop_thread = threading.get_ident()

    def busy_on_the_loop(connection: Connection) -> int:
        if threading.get_ident() == loop_thread:  # as a locked database answers at once
            connection.exec_driver_sql("SELECT * FROM locked_for_this_test")
        return int(connection.execute(text("SELECT 7")).scalar_one())

    assert await database.read_point(busy_on_the_loop) == 7
    # The loop's connection was replaced; point reads go on working on the loop.
    assert await database.read_point(lambda c: threading.get_ident()) == loop_thread
