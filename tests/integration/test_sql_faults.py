"""Database faults on real servers come out of the stores as StoreUnavailable,
never as a driver's DBAPIError: a Postgres shutting down (new connections
refused with CannotConnectNowError), a `pg_ctl restart -m fast` under a call in
flight; and a stop job whose final write meets such a refusal after its driver
acted is delivered again (never acknowledged as `internal`) and finished by its
redelivery. The cluster is this module's own, since it is stopped and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import Connection, text

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import StoreUnavailable
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.testing.driver import InMemoryDriver
from runplane.testing.jobs import InMemoryJobResults
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.jobs.handler import JobHandler
from tests.support.postgres import PostgresServer
from tests.support.store_backends import make_entry, make_record

WAIT_S = 60
"""A bound on waits against hangs, never an assertion on speed."""


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres-faults"))
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


async def until_connections_are_refused(dsn: str) -> None:
    """Wait (bounded) until Postgres answers a new connection with 57P03."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except asyncpg.CannotConnectNowError:
                return
            await connection.close()
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def shutting_down(server: PostgresServer, dsn: str) -> AsyncIterator[None]:
    """Postgres in a smart shutdown held open by one session: it refuses every
    new connection. On the way out it is stopped (fast) and started again."""
    held = await asyncpg.connect(dsn)
    try:
        await asyncio.to_thread(server.stop_server, "smart", wait=False)
        await until_connections_are_refused(dsn)
        yield
    finally:
        await asyncio.to_thread(server.stop_server, "fast")
        held.terminate()
        await asyncio.to_thread(server.start_server)


async def test_a_postgres_refusing_connections_is_store_unavailable(
    own_postgres: PostgresServer, database: SqlDatabase
) -> None:
    runtimes = SqlRuntimeStore(database)
    await runtimes.create(make_record("rt-1"))
    await drop_connections(database)  # no pooled connection left: each call connects
    async with shutting_down(own_postgres, raw_dsn(own_postgres, database)):
        with pytest.raises(StoreUnavailable, match="shutting down"):
            await runtimes.get("rt-1")
        with pytest.raises(StoreUnavailable, match="shutting down"):
            await SqlOperationLog(database).append(make_entry("op-1"))
        with pytest.raises(StoreUnavailable, match="shutting down"):
            async with database.reading() as connection:
                await connection.execute(text("SELECT 1"))
    record = await runtimes.get("rt-1")  # back: the same database object works again
    assert record is not None


def sleep_in_postgres(connection: Connection) -> None:
    connection.execute(text("SELECT pg_sleep(600)"))


async def until_running(dsn: str, statement: str) -> None:
    """Wait (bounded) until another session runs `statement`."""
    probe = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                query = "SELECT count(*) FROM pg_stat_activity WHERE query = $1"
                if await probe.fetchval(query, statement):
                    return
                await asyncio.sleep(0.05)
    finally:
        await probe.close()


@pytest.mark.parametrize("call", ["read", "write"])
async def test_a_fast_restart_under_a_call_in_flight_is_store_unavailable(
    own_postgres: PostgresServer, database: SqlDatabase, call: str
) -> None:
    in_flight = asyncio.create_task(getattr(database, call)(sleep_in_postgres))
    await until_running(raw_dsn(own_postgres, database), "SELECT pg_sleep(600)")
    restarted = asyncio.create_task(asyncio.to_thread(own_postgres.restart, "fast"))
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(in_flight, WAIT_S)
    await restarted
    assert await database.read(lambda c: c.execute(text("SELECT 1")).scalar()) == 1


async def test_a_stopped_postgres_is_store_unavailable(
    own_postgres: PostgresServer, database: SqlDatabase
) -> None:
    runtimes = SqlRuntimeStore(database)
    await asyncio.to_thread(own_postgres.stop_server, "fast")
    try:
        with pytest.raises(StoreUnavailable):
            await runtimes.get("rt-1")
        with pytest.raises(StoreUnavailable):
            await runtimes.create(make_record("rt-2"))
    finally:
        await asyncio.to_thread(own_postgres.start_server)
    assert await runtimes.get("rt-1") is None


class StopThenRefuse(InMemoryDriver):
    """Stops for real, then Postgres starts refusing connections (and the pool
    holds none): the final CAS meets a CannotConnectNowError."""

    def __init__(self, refuse: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.refuse = refuse

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        info = await super().stop(container_id, timeout_s=timeout_s)
        await self.refuse()
        return info


async def drop_connections(database: SqlDatabase) -> None:
    """No connection left, parked ones (native_pg.py) included: each call connects."""
    if database.native is not None:
        await database.native.close()
    await database.engine.dispose()


async def test_a_refusal_after_the_driver_acted_is_retried_then_finished(
    own_postgres: PostgresServer, database: SqlDatabase
) -> None:
    dsn = raw_dsn(own_postgres, database)
    held: list[asyncpg.Connection] = []

    async def refuse() -> None:
        held.append(await asyncpg.connect(dsn))
        await asyncio.to_thread(own_postgres.stop_server, "smart", wait=False)
        await until_connections_are_refused(dsn)
        await drop_connections(database)

    driver = StopThenRefuse(refuse)
    clock = SystemClock()
    deps = Dependencies(
        runtimes=SqlRuntimeStore(database),
        operations=SqlOperationLog(database),
        leases=InMemoryLeaseStore(clock),
        drivers={driver.name: driver},
        clock=clock,
        tokens=SecretTokenGenerator(),
    )
    lifecycle = Lifecycle.build(deps, driver.name)
    created = await lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST, runtime_id="rt-1")
    )
    assert created.ok, created
    results = InMemoryJobResults()
    handler = JobHandler(OpKind.STOP, lifecycle, deps.runtimes, results, clock, 0, 3)
    fields = {"runtime_id": "rt-1", "reason": "idle", "job_id": "job-1"}
    try:
        with pytest.raises(RetryLater, match="shutting down"):
            await handler(StreamEntry("runtime:stop_jobs", "1-0", fields, 1, False))
    finally:
        await asyncio.to_thread(own_postgres.stop_server, "fast")
        for connection in held:
            connection.terminate()
        await asyncio.to_thread(own_postgres.start_server)
    assert results.results == []  # not acknowledged: no `internal`, no failure
    await handler(StreamEntry("runtime:stop_jobs", "1-0", fields, 2, False))
    [published] = results.results
    assert (published.outcome, published.status) == (Outcome.SUCCESS, "stopped")
    assert driver.calls["stop"] == 1
    entries = await deps.operations.list_for_runtime("rt-1")
    assert [(e.op, e.outcome, e.job_id) for e in entries[:1]] == [
        (OpKind.STOP, Outcome.SUCCESS, "job-1")
    ]
