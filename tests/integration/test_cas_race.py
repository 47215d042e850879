"""Two writers race the same compare-and-swap, on Postgres and on SQLite: exactly
one wins every round, the other gets CasConflict, and only the winner's
operation-log entry is written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.domain.errors import CasConflict
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from tests.support.postgres import PostgresServer
from tests.support.store_backends import (
    T0,
    make_entry,
    make_record,
    migrated_postgres_url,
    migrated_sqlite_url,
)

ROUNDS = 50
WRITERS = 2


def next_change(record: RuntimeRecord, round_no: int) -> StatusChange:
    """running -> pausing -> running ...: moves the transition table allows."""
    target = Status.PAUSING if record.status is Status.RUNNING else Status.RUNNING
    return StatusChange(
        runtime_id=record.runtime_id,
        expected_status=record.status,
        expected_version=record.version,
        status=target,
        at=T0 + timedelta(seconds=round_no),
    )


async def one_round(
    stores: Sequence[SqlRuntimeStore], record: RuntimeRecord, round_no: int
) -> RuntimeRecord:
    change = next_change(record, round_no)
    attempts = [
        store.compare_and_swap(
            change, entry=make_entry(f"op-{round_no}-{n}", "rt-race", job_id=f"job-{round_no}-{n}")
        )
        for n, store in enumerate(stores)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [result for result in results if isinstance(result, RuntimeRecord)]
    conflicts = [result for result in results if isinstance(result, CasConflict)]
    assert len(winners) == 1, results
    assert len(conflicts) == len(stores) - 1, results
    assert winners[0].version == record.version + 1
    return winners[0]


async def race(url: str) -> None:
    databases = [SqlDatabase.from_url(url) for _ in range(WRITERS)]
    try:
        stores = [SqlRuntimeStore(database) for database in databases]
        record = make_record("rt-race", version=1)
        await stores[0].create(record)
        for round_no in range(ROUNDS):
            record = await one_round(stores, record, round_no)
        assert await stores[-1].get("rt-race") == record
        assert record.version == ROUNDS + 1
        entries = await SqlOperationLog(databases[0]).list_for_runtime("rt-race", limit=10_000)
        rounds_logged = sorted(int(entry.operation_id.split("-")[1]) for entry in entries)
        assert rounds_logged == list(range(ROUNDS))
    finally:
        for database in databases:
            await database.dispose()


async def test_one_writer_wins_each_round_on_postgres(postgres_server: PostgresServer) -> None:
    await race(await migrated_postgres_url(postgres_server))


async def test_one_writer_wins_each_round_on_sqlite(tmp_path: Path) -> None:
    await race(await migrated_sqlite_url(tmp_path))
