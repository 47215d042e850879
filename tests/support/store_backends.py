"""The store backends the contract suites run against, and builders for their data.

A contract class (`RuntimeStoreContract`, ...) is subclassed once per backend
mixin here: `InMemoryBackend`, `SqliteBackend`, `PostgresBackend`. Each mixin
provides a `stores` fixture; the SQL ones migrate one database per test class
and empty its tables before every test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete

from runplane.adapters.sql.api_key_store import SqlApiKeyStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.migrate import upgrade
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.outbox import SqlOutbox
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.sql.schema import metadata
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.api_keys import ApiKeyStore
from runplane.ports.health import EngineHealthStore, HealthSnapshotStore
from runplane.ports.lifecycle import OperationLog, RuntimeStore
from runplane.ports.lifecycle_events import Outbox
from runplane.testing.health import InMemoryEngineHealthStore, InMemoryHealthSnapshotStore
from runplane.testing.stores import (
    InMemoryApiKeyStore,
    InMemoryOperationLog,
    InMemoryRuntimeStore,
)
from tests.support.postgres import PostgresServer

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Stores:
    """The ports one database serves, over the same data."""

    runtimes: RuntimeStore
    operations: OperationLog
    api_keys: ApiKeyStore
    outbox: Outbox
    engine_health: EngineHealthStore
    health_snapshots: HealthSnapshotStore


def memory_stores() -> Stores:
    log = InMemoryOperationLog()
    runtimes = InMemoryRuntimeStore(log)
    return Stores(
        runtimes,
        log,
        InMemoryApiKeyStore(),
        log.outbox,
        InMemoryEngineHealthStore(runtimes),
        InMemoryHealthSnapshotStore(),
    )


def sql_stores(database: SqlDatabase) -> Stores:
    return Stores(
        SqlRuntimeStore(database),
        SqlOperationLog(database),
        SqlApiKeyStore(database),
        SqlOutbox(database),
        SqlEngineHealthStore(database),
        SqlHealthSnapshotStore(database),
    )


async def migrated_sqlite_url(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'runplane.db'}"
    await upgrade(url)
    return url


async def migrated_postgres_url(server: PostgresServer) -> str:
    url = server.create_database(f"rp_{uuid.uuid4().hex[:16]}")
    await upgrade(url)
    return url


async def empty_tables(database: SqlDatabase) -> None:
    async with database.writing() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(delete(table))


class InMemoryBackend:
    @pytest.fixture
    def stores(self) -> Stores:
        return memory_stores()


class _SqlBackend:
    @pytest_asyncio.fixture(loop_scope="session")
    async def stores(self, database: SqlDatabase) -> Stores:
        await empty_tables(database)
        return sql_stores(database)


class SqliteBackend(_SqlBackend):
    @pytest_asyncio.fixture(scope="class", loop_scope="session")
    @classmethod
    async def database(cls, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SqlDatabase]:
        url = await migrated_sqlite_url(tmp_path_factory.mktemp("sqlite"))
        database = SqlDatabase.from_url(url)
        yield database
        await database.dispose()


class PostgresBackend(_SqlBackend):
    @pytest_asyncio.fixture(scope="class", loop_scope="session")
    @classmethod
    async def database(cls, postgres_server: PostgresServer) -> AsyncIterator[SqlDatabase]:
        database = SqlDatabase.from_url(await migrated_postgres_url(postgres_server))
        yield database
        await database.dispose()


def make_record(runtime_id: str = "rt-1", **overrides: Any) -> RuntimeRecord:
    values: dict[str, Any] = {
        "runtime_id": runtime_id,
        "team_id": "team-a",
        "status": Status.RUNNING,
        "version": 1,
        "driver": "process",
        "spec": {"command": ["sleep", "1000"], "env": {"A": "1"}},
        "created_at": T0,
        "updated_at": T0,
        "container_id": "c-1",
        "engine_endpoint": "127.0.0.1:7000",
        "engine_health": "healthy",
        "started_at": T0,
        "last_op_at": T0,
        "status_deadline": T0 + timedelta(minutes=1),
    }
    values.update(overrides)
    return RuntimeRecord(**values)


def make_entry(
    operation_id: str = "op-1", runtime_id: str = "rt-1", **overrides: Any
) -> OperationEntry:
    values: dict[str, Any] = {
        "operation_id": operation_id,
        "runtime_id": runtime_id,
        "op": OpKind.STOP,
        "op_source": OpSource.REST,
        "outcome": Outcome.SUCCESS,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "team_id": "team-a",
        "status_from": Status.RUNNING,
        "status_to": Status.STOPPING,
        "container_id": "c-1",
        "reason": "requested",
        "actor": "api_key:k-1",
    }
    values.update(overrides)
    return OperationEntry(**values)
