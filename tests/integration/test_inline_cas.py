"""A compare-and-swap written on the loop (inline_writes.py) in a transaction of
the DBAPI connection's own: committed with its outbox rows, the outbox's commit
listeners told (the relay's wake-up), nothing left of a lost one."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.outbox import SqlOutbox, watch_commits
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.domain.errors import CasConflict
from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from tests.support.store_backends import T0, make_record, migrated_sqlite_url


@pytest_asyncio.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    try:
        yield database
    finally:
        await database.dispose()


def moved(record: RuntimeRecord, n: int) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"ev-{n}",
        type="runtime.state.changed",
        runtime_id=record.runtime_id,
        time=T0,
        sequence=record.version + 1,
        outcome="success",
        team_id=record.team_id,
        actor=Actor("system", "test"),
        status_from=str(record.status),
        status_to="stopping",
    )


def stop(record: RuntimeRecord, version: int) -> StatusChange:
    return StatusChange(
        runtime_id=record.runtime_id,
        expected_status=Status.RUNNING,
        expected_version=version,
        status=Status.STOPPING,
        at=T0,
    )


async def test_an_inline_cas_commits_its_events_and_tells_the_commit_listeners(
    database: SqlDatabase,
) -> None:
    told: list[int] = []
    watch_commits(database, lambda: told.append(threading.get_ident()))
    store = SqlRuntimeStore(database)
    record = make_record(status=Status.RUNNING, version=1)
    await store.create(record)
    told.clear()

    with pytest.raises(CasConflict):
        await store.compare_and_swap(stop(record, version=7), events=[moved(record, 1)])
    assert told == []  # rolled back: no wake-up
    assert await SqlOutbox(database).pending() == []

    updated = await store.compare_and_swap(stop(record, version=1), events=[moved(record, 2)])
    assert (updated.status, updated.version) == (Status.STOPPING, 2)
    assert told == [threading.get_ident()]  # on the loop, once
    assert [event.event_id for event in await SqlOutbox(database).pending()] == ["ev-2"]
    assert await store.get(record.runtime_id) == updated
