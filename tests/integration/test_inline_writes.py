"""SQLite's short writes run on the event loop when the write lock is free at
once, and go to the writer thread otherwise, with the same outcome (issue 15)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from runplane.adapters.sql import inline_writes
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.inline_writes import InlineWriter, checkpoint_on


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    database = SqlDatabase.from_url(f"sqlite:///{tmp_path / 'writes.db'}")
    await database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
    try:
        yield database
    finally:
        await database.dispose()


def insert(value: int) -> object:
    def work(connection: Connection) -> int:
        connection.execute(text(f"INSERT INTO t VALUES ({value})"))
        return threading.get_ident()

    return work


async def count(database: SqlDatabase) -> int:
    return int(await database.read(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar()))


async def test_a_point_write_runs_on_the_loop_and_commits(database: SqlDatabase) -> None:
    assert await database.write_point(insert(1)) == threading.get_ident()  # type: ignore[arg-type]
    assert await count(database) == 1  # committed: another connection sees it


async def test_a_point_write_waits_in_the_thread_while_another_process_writes(
    database: SqlDatabase, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "writes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another process writing: the lock is taken
    try:
        write = asyncio.ensure_future(database.write_point(insert(2)))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert not write.done()  # not failed at once: waiting on the busy timeout
        other.execute("COMMIT")
        thread = await asyncio.wait_for(write, 30)
        assert thread != threading.get_ident()  # done by the writer thread
    finally:
        other.close()
    assert await count(database) == 1
    # The loop's connection goes on being used once the lock is free again.
    assert await database.write_point(insert(3)) == threading.get_ident()  # type: ignore[arg-type]


async def test_a_point_write_asked_during_a_thread_batch_waits_then_runs_on_the_loop(
    database: SqlDatabase,
) -> None:
    batch_running = threading.Event()
    order: list[str] = []

    def slow_thread_write(connection: Connection) -> None:
        batch_running.set()
        time.sleep(0.2)  # the writer thread's batch, holding the write lock
        connection.execute(text("INSERT INTO t VALUES (7)"))
        order.append("thread")

    def point(connection: Connection) -> int:
        connection.execute(text("INSERT INTO t VALUES (8)"))
        order.append("point")
        return threading.get_ident()

    thread_write = asyncio.ensure_future(database.write(slow_thread_write))
    assert await asyncio.to_thread(batch_running.wait, 30)
    # Under steady load it used to join the thread's next batch (and every
    # write after it too); now it waits for the batch, then runs here.
    assert await database.write_point(point) == threading.get_ident()  # type: ignore[arg-type]
    await thread_write
    assert order == ["thread", "point"]
    assert await count(database) == 2


async def test_a_failing_point_write_rolls_back_and_raises_its_own_error(
    database: SqlDatabase,
) -> None:
    def half_then_fail(connection: Connection) -> None:
        connection.execute(text("INSERT INTO t VALUES (9)"))
        raise LookupError("the work's own answer")

    with pytest.raises(LookupError, match="own answer"):
        await database.write_point(half_then_fail)
    assert await count(database) == 0
    assert await database.write_point(insert(4)) == threading.get_ident()  # type: ignore[arg-type]


async def test_a_point_write_the_loop_cannot_do_goes_to_a_thread(database: SqlDatabase) -> None:
    loop_thread = threading.get_ident()

    def fails_on_the_loop(connection: Connection) -> int:
        connection.execute(text("INSERT INTO t VALUES (5)"))
        if threading.get_ident() == loop_thread:  # a database error, on the loop only
            connection.exec_driver_sql("SELECT * FROM missing_for_this_test")
        return threading.get_ident()

    assert await database.write_point(fails_on_the_loop) != loop_thread
    assert await count(database) == 1  # the loop's attempt rolled back, the thread's committed


async def test_inline_commits_ask_for_a_checkpoint_now_and_then(
    database: SqlDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_writes, "CHECKPOINT_EVERY", 3)
    asked: list[int] = []
    writer = InlineWriter(
        database._sqlite_writer.connect,
        lambda: asked.append(1),
    )
    try:
        for value in range(7):
            done, _ = writer.try_write(insert(value))  # type: ignore[arg-type]
            assert done
    finally:
        writer.close()
    assert len(asked) == 2
    assert await count(database) == 7


async def test_a_checkpoint_runs_on_a_reader_thread(database: SqlDatabase) -> None:
    for value in range(5):
        await database.write_point(insert(value))  # type: ignore[arg-type]
    # What the inline writer asks for: the loop's connection never checkpoints.
    busy, frames, checkpointed = await checkpoint_on(database._reads)()
    assert busy == 0
    assert frames > 0
    assert checkpointed == frames


async def test_dispose_waits_for_a_checkpoint_still_running(tmp_path: Path) -> None:
    database = SqlDatabase.from_url(f"sqlite:///{tmp_path / 'late.db'}")
    await database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
    started = threading.Event()

    def slow_read(connection: Connection) -> int:
        started.set()
        time.sleep(0.3)  # still inside SQLite work when dispose starts
        return int(connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one())

    # Nobody awaits it, as nobody awaits the inline writer's checkpoints.
    unawaited = database._reads.submit(slow_read)
    await asyncio.to_thread(started.wait, 10)
    await database.dispose()
    assert unawaited.done()
    assert unawaited.result() == 0  # ran on its connection, not closed under it
