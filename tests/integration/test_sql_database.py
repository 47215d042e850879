"""The SQL plumbing under the stores: URLs, SQLite pragmas, the write gate,
migrations (no drift from tables.py, idempotent, concurrent) and unreachable
databases raising StoreUnavailable."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from runplane.adapters.sql.engine import SqlDatabase, database_url
from runplane.adapters.sql.migrate import upgrade
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.sql.schema import metadata
from runplane.domain.errors import StoreUnavailable
from tests.support.postgres import PostgresServer, free_port
from tests.support.store_backends import make_entry, migrated_postgres_url, migrated_sqlite_url

WAIT_S = 60
"""A bound on waits against hangs, never an assertion on speed."""


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_the_async_driver(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


def test_other_databases_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported") as raised:
        database_url("mysql://user:secret@host/db")
    assert "secret" not in str(raised.value)


def schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def drift_after_migrating(url: str) -> list[Any]:
    await upgrade(url)  # a second upgrade is a no-op
    database = SqlDatabase.from_url(url)
    try:
        async with database.reading() as connection:
            return await connection.run_sync(schema_drift)
    finally:
        await database.dispose()


async def test_sqlite_migrations_match_the_tables(tmp_path: Path) -> None:
    assert await drift_after_migrating(await migrated_sqlite_url(tmp_path)) == []


async def test_postgres_migrations_match_the_tables(postgres_server: PostgresServer) -> None:
    assert await drift_after_migrating(await migrated_postgres_url(postgres_server)) == []


async def test_instances_starting_together_migrate_in_turn(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("rp_concurrent_upgrade")
    await asyncio.gather(upgrade(url), upgrade(url), upgrade(url))
    assert await drift_after_migrating(url) == []


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    pragmas = ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
    try:
        async with database.reading() as connection:
            values = [(await connection.execute(text(f"PRAGMA {p}"))).scalar() for p in pragmas]
    finally:
        await database.dispose()
    assert values == ["wal", 30_000, 1, 1]


async def test_concurrent_writers_share_one_sqlite_database(tmp_path: Path) -> None:
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    log = SqlOperationLog(database)
    try:
        await asyncio.gather(*(log.append(make_entry(f"op-{n}")) for n in range(200)))
        assert len(await log.list_for_runtime("rt-1", limit=1_000)) == 200
    finally:
        await database.dispose()


async def test_an_unreachable_postgres_is_store_unavailable() -> None:
    database = SqlDatabase.from_url(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        with pytest.raises(StoreUnavailable):
            await SqlRuntimeStore(database).get("rt-1")
        with pytest.raises(StoreUnavailable):
            await SqlOperationLog(database).append(make_entry())
    finally:
        await database.dispose()


async def test_an_unopenable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        await upgrade(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'runplane.db'}")


async def test_a_cancelled_sqlite_write_holds_the_writer_until_its_thread_ends(
    tmp_path: Path,
) -> None:
    """The write's thread cannot be stopped: a cancelled caller returns only once
    the transaction ended, so no later writer (nor the caller's own caller)
    goes on while it may still commit."""
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    log = SqlOperationLog(database)
    began, finish = threading.Event(), threading.Event()

    def slow_append(connection: Connection) -> None:
        began.set()
        finish.wait(WAIT_S)
        connection.execute(text("INSERT INTO probe VALUES (1)"))

    try:
        async with database.writing() as connection:
            await connection.execute(text("CREATE TABLE probe (n INTEGER)"))
        writing = asyncio.create_task(database.write(slow_append))
        assert await asyncio.to_thread(began.wait, WAIT_S)
        writing.cancel()
        for _ in range(20):  # loop turns, not time: the cancel is delivered at once
            await asyncio.sleep(0)
        answered_while_open = writing.done()
        finish.set()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert not answered_while_open
        async with database.reading() as connection:
            rows = (await connection.execute(text("SELECT n FROM probe"))).all()
        assert len(rows) == 1  # the thread went on and committed before the cancel was answered
        await log.append(make_entry())  # the writer lock is free again
    finally:
        finish.set()
        await database.dispose()


async def test_sqlite_writes_asked_together_are_each_their_own_transaction(
    tmp_path: Path,
) -> None:
    """Writes asked for in one turn of the loop go to the thread as one batch:
    a unit that raises rolls back only its own rows, and each caller hears its
    own outcome."""
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))

    def insert(n: int, fail: bool) -> Any:
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})
            if fail:
                raise ValueError(f"unit {n} fails after its insert")
            return n

        return work

    try:
        async with database.writing() as connection:
            await connection.execute(text("CREATE TABLE probe (n INTEGER)"))
        outcomes = await asyncio.gather(
            *(database.write(insert(n, fail=n % 3 == 0)) for n in range(12)),
            return_exceptions=True,
        )
        async with database.reading() as connection:
            rows = {n for (n,) in (await connection.execute(text("SELECT n FROM probe"))).all()}
    finally:
        await database.dispose()
    assert [o if isinstance(o, int) else "failed" for o in outcomes] == [
        "failed" if n % 3 == 0 else n for n in range(12)
    ]
    assert all(isinstance(o, ValueError) for o in outcomes[::3])
    assert rows == {n for n in range(12) if n % 3 != 0}


async def test_sqlite_reads_asked_together_keep_their_own_results_and_errors(
    tmp_path: Path,
) -> None:
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))

    def read(n: int) -> Any:
        def work(connection: Connection) -> int:
            if n == 2:
                connection.execute(text("SELECT * FROM no_such_table"))
            return int(connection.execute(text("SELECT :n + 1"), {"n": n}).scalar_one())

        return work

    try:
        outcomes = await asyncio.gather(
            *(database.read(read(n)) for n in range(5)), return_exceptions=True
        )
    finally:
        await database.dispose()
    assert [o for n, o in enumerate(outcomes) if n != 2] == [1, 2, 4, 5]
    assert "no_such_table" in str(outcomes[2])
