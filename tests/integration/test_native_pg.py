"""The hot statements on asyncpg itself (adapters/sql/native_pg.py, cas.py) fail as
the SQLAlchemy path does: a restart under a write in flight and a connection
the server killed come out as StoreUnavailable, and the broken connection is
not used again. (A taken job_id rolling a CAS back: tests/contract.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.domain.errors import CasConflict, StoreUnavailable
from runplane.domain.records import StatusChange
from runplane.domain.statuses import Status
from tests.support.events import lifecycle_event
from tests.support.postgres import PostgresServer
from tests.support.store_backends import make_record

WAIT_S = 60
"""A bound on waits against hangs, never an assertion on speed."""


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres-native"))
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def database(own_postgres: PostgresServer) -> AsyncIterator[SqlDatabase]:
    url = own_postgres.create_database(f"rp_{uuid.uuid4().hex[:16]}")
    await upgrade(url)
    database = SqlDatabase.from_url(url)
    yield database
    await database.dispose()


def raw_dsn(server: PostgresServer, database: SqlDatabase) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/{database.engine.url.database}"


async def test_postgres_takes_the_native_path(database: SqlDatabase) -> None:
    assert database.native is not None


async def test_a_restart_under_a_native_write_is_store_unavailable(
    own_postgres: PostgresServer, database: SqlDatabase
) -> None:
    assert database.native is not None
    runtimes = SqlRuntimeStore(database)
    await runtimes.create(make_record("rt-restart"))

    async def sleeping_write() -> None:
        assert database.native is not None
        async with database.native.autocommit() as connection:
            sql = "SELECT pg_sleep(600)"
            await connection.run(sql, connection.asyncpg.execute(sql))

    in_flight = asyncio.create_task(sleeping_write())
    probe = await asyncpg.connect(raw_dsn(own_postgres, database))
    try:
        async with asyncio.timeout(WAIT_S):
            query = "SELECT count(*) FROM pg_stat_activity WHERE query = $1"
            while True:
                if await probe.fetchval(query, "SELECT pg_sleep(600)"):
                    break
                await asyncio.sleep(0.05)
    finally:
        await probe.close()
    await asyncio.to_thread(own_postgres.restart, "fast")
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(in_flight, WAIT_S)
    record = await runtimes.get("rt-restart")  # the next call gets a working connection
    assert record is not None
    assert record.status is Status.RUNNING


async def test_a_killed_connection_is_dropped_not_reused(
    own_postgres: PostgresServer, database: SqlDatabase
) -> None:
    runtimes = SqlRuntimeStore(database)
    await runtimes.create(make_record("rt-killed"))
    killer = await asyncpg.connect(raw_dsn(own_postgres, database))
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()
    failures = 0
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                record = await runtimes.get("rt-killed")
                break
            except StoreUnavailable:
                failures += 1  # a connection whose end was not yet seen
    assert record is not None
    assert failures <= 1


async def test_a_finished_unit_leaves_its_connection_for_the_next_then_the_pool(
    database: SqlDatabase,
) -> None:
    native = database.native
    assert native is not None
    await native.close()  # none parked by earlier tests
    async with native.reading() as first:
        used = first.asyncpg
    async with native.autocommit() as second:
        assert second.asyncpg is used  # taken as it was left, no pool checkout
        sql = "SELECT 1"
        assert await second.run(sql, second.asyncpg.fetchval(sql)) == 1
    pool = database.engine.pool
    assert pool.checkedout() >= 1  # type: ignore[attr-defined]
    for _ in range(int(WAIT_S / 0.05)):  # unused a moment, it goes back to the pool
        if not pool.checkedout():  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_failed_unit_does_not_leave_its_connection(database: SqlDatabase) -> None:
    native = database.native
    assert native is not None
    await native.close()

    async def failing_write() -> None:
        assert native is not None
        async with native.autocommit() as failed:
            sql = "SELECT 1 / 0"
            await failed.run(sql, failed.asyncpg.fetchval(sql))

    with pytest.raises(sa_exc.DBAPIError):  # as SQLAlchemy raises it
        await failing_write()
    assert native._parked == []
    async with native.reading() as after:
        assert not after.asyncpg.is_in_transaction()
        sql = "SELECT 1"
        assert await after.run(sql, after.asyncpg.fetchval(sql)) == 1
    await native.close()
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_cas_that_commits_events_wakes_the_relay_and_a_lost_one_does_not(
    database: SqlDatabase,
) -> None:
    native = database.native
    assert native is not None
    woken: list[int] = []
    native.outbox_committed = lambda: woken.append(1)
    runtimes = SqlRuntimeStore(database)
    record = make_record("rt-wakes")
    await runtimes.create(record)
    change = StatusChange(
        runtime_id=record.runtime_id,
        expected_status=record.status,
        expected_version=record.version,
        status=Status.STOPPING,
        at=record.updated_at,
    )
    moved = await runtimes.compare_and_swap(
        change, events=[lifecycle_event(1, runtime_id=record.runtime_id)]
    )
    assert moved.status is Status.STOPPING
    assert woken == [1]

    with pytest.raises(CasConflict):
        await runtimes.compare_and_swap(
            change, events=[lifecycle_event(2, runtime_id=record.runtime_id)]
        )
    assert woken == [1]
    native.outbox_committed = None
