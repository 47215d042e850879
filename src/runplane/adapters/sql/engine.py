"""The database handle the SQL stores share: one engine and, on SQLite, one writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, event, make_url
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from runplane.adapters.sql.faults import unavailable_as_store_error
from runplane.adapters.sql.inline_reads import InlineReader
from runplane.adapters.sql.inline_writes import InlineWriter, checkpoint_on
from runplane.adapters.sql.native_pg import NativeUnits
from runplane.adapters.sql.sqlite_setup import (
    READ_WITHOUT_TRANSACTION,
    SQLITE_BEGIN_OPTION,
    begin_sqlite_transaction,
    prepare_sqlite_connection,
)
from runplane.adapters.sql.thread_batches import ThreadBatches

T = TypeVar("T")

SQLITE_THREADS = 4
"""Threads for SQLite work: one writer at a time, the rest read (WAL readers do
not block the writer)."""

POSTGRES_POOL_SIZE = 32
POSTGRES_POOL_OVERFLOW = 0
"""Connections kept, none opened beyond them: a stream consumer runs 64 jobs
at once, and with 16 kept and 16 more opened at a peak (then closed) every
busy moment opened and closed connections (TLS negotiation, the statements
prepared again): more CPU than the work. The bound on connections is the same
32; past it a unit of work waits for a free one (the pool's timeout, then
StoreUnavailable)."""
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def database_url(url: str | URL) -> URL:
    """`url` with runplane's async driver: `sqlite://` and `postgresql://` are
    accepted as `sqlite+aiosqlite://` and `postgresql+asyncpg://`."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        shown = parsed.render_as_string(hide_password=True)
        raise ValueError(f"unsupported database URL {shown!r}: use sqlite or postgresql")
    return parsed.set(drivername=driver)


def create_engine(url: str | URL) -> AsyncEngine:
    """An AsyncEngine for SQLite (WAL, busy timeout, synchronous=NORMAL, foreign
    keys, transactions begun by us) or Postgres (a pool that checks connections
    before use)."""
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(
            parsed, pool_size=POSTGRES_POOL_SIZE, max_overflow=POSTGRES_POOL_OVERFLOW
        )
        event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
        return engine
    if parsed.database and parsed.database != ":memory:":
        with unavailable_as_store_error():
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed)
    event.listen(engine.sync_engine, "connect", prepare_sqlite_connection)
    event.listen(engine.sync_engine, "begin", begin_sqlite_transaction)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout:
    asyncpg saw the socket end) is replaced before use. This replaces
    `pool_pre_ping`, whose ping was a BEGIN, a query and a ROLLBACK on every
    checkout: three round trips before each unit of work. A connection that
    dies unseen still fails its statement, as StoreUnavailable, and is dropped."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("connection closed by the server")


def create_sqlite_sync_engine(url: URL) -> Engine:
    """The synchronous twin of a SQLite AsyncEngine, same file and same set-up:
    `SqlDatabase.read`/`write` run a whole unit of work on it in one thread
    hand-off, where the async driver hands off to its thread for every call."""
    engine = sa_create_engine(
        url.set(drivername="sqlite"), connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", prepare_sqlite_connection)
    event.listen(engine, "begin", begin_sqlite_transaction)
    return engine


class SqlDatabase:
    """An engine plus the write gate the stores share.

    SQLite allows one writer at a time and concurrent aiosqlite writers fail with
    "database is locked", so on SQLite this process's writes queue on one lock and
    begin IMMEDIATE (other processes' writers wait on the busy timeout). Postgres
    writes run in parallel."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite: Engine | None = None
        self._inline: InlineReader | None = None
        self._inline_writes: InlineWriter | None = None
        self.native: NativeUnits | None = None
        """On Postgres: the hot statements' way to asyncpg itself (native_pg.py)."""
        if engine.dialect.name == "sqlite":
            sync = create_sqlite_sync_engine(engine.url)
            self._sqlite_writer = sync.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            self._sqlite_reader = sync.execution_options(
                **{SQLITE_BEGIN_OPTION: READ_WITHOUT_TRANSACTION}
            )
            self._sqlite = sync
            self._inline = InlineReader(self._sqlite_reader.connect)
            # Its own threads: database work never queues behind the default
            # executor's other blocking calls (a process driver's launches, say).
            self._executor = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="sqlite")
        self._writer = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        self._reader = engine.execution_options(**{SQLITE_BEGIN_OPTION: READ_WITHOUT_TRANSACTION})
        if engine.dialect.name == "postgresql":
            self.native = NativeUnits(engine)
        if engine.dialect.name != "sqlite":
            # As on SQLite, a read is its own statement: no BEGIN and ROLLBACK
            # round trips around it.
            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        if self._sqlite is not None:
            # Units of work asked for together go to a thread together (thread_batches.py).
            self._reads = ThreadBatches(
                self._executor, self._sqlite_reader.connect, transaction_each=False
            )
            self._writes = ThreadBatches(
                self._executor,
                self._sqlite_writer.connect,
                transaction_each=True,
                gate=self._write_lock,
            )
            self._inline_writes = InlineWriter(
                self._sqlite_writer.connect, checkpoint_on(self._reads)
            )

    @classmethod
    def from_url(cls, url: str | URL) -> SqlDatabase:
        """Build the engine for `url`; no connection is opened until first use."""
        return cls(create_engine(url))

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def sync_engines(self) -> list[Engine]:
        """The synchronous engines besides `engine` (SQLite's threads' own), for
        event listeners that must see every transaction."""
        return [self._sqlite] if self._sqlite is not None else []

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        with unavailable_as_store_error():
            async with self._reader.connect() as connection:
                yield connection

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self._write_gate():
            with unavailable_as_store_error():
                async with self._writer.begin() as connection:
                    yield connection

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` (plain, synchronous SQLAlchemy Core) on a connection: on
        SQLite in a thread, with the other reads asked for meanwhile (one
        hand-off for them all); through `run_sync` on Postgres."""
        with unavailable_as_store_error():
            if self._sqlite is not None:
                return await self._reads.submit(work)
            async with self._reader.connect() as connection:
                return await connection.run_sync(work)

    async def read_point(self, work: Callable[[Connection], T]) -> T:
        """A read by primary or unique key through a compiled statement: on
        SQLite on the event loop itself, never waiting for a lock (else as
        `read`; inline_reads.py); as `read` on Postgres."""
        if self._inline is not None:
            done, result = self._inline.try_read(work)
            if done:
                return result  # type: ignore[return-value]
        return await self.read(work)

    async def write_point(self, work: Callable[[Connection], T]) -> T:
        """A short write through compiled statements (a compare-and-swap with its
        entry and events): on SQLite on the event loop itself, once this
        process's writer lock is free, when the database's is free at once
        (else as `write`; inline_writes.py); as `write` on Postgres."""
        inline, lock = self._inline_writes, self._write_lock
        if inline is not None and lock is not None:
            # A batch of the writer thread's running: wait for it, then write
            # here, rather than join the thread's next batch. Joining cost a
            # hand-off per write, and under steady load every write after it
            # joined too (the lock never fell free between batches): at 16
            # connections nine in ten REST writes went to the thread.
            batch_done = lock if lock.locked() else contextlib.nullcontext()
            async with batch_done:
                with unavailable_as_store_error():
                    done, result = inline.try_write(work)
            if done:
                return result  # type: ignore[return-value]
        return await self.write(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction: committed when it returns, rolled back if
        it raises. On SQLite, writes run one after another, with the other writes
        asked for meanwhile (each its own transaction, one hand-off for them
        all), under the same lock as `writing()`."""
        if self._sqlite is not None:
            with unavailable_as_store_error():
                return await _outlasting_cancellation(self._writes.submit(work))
        async with self._write_gate():
            with unavailable_as_store_error():
                async with self._writer.begin() as connection:
                    return await connection.run_sync(work)

    def _write_gate(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    async def dispose(self) -> None:
        if self.native is not None:
            await self.native.close()
        await self.engine.dispose()
        if self._sqlite is not None:
            if self._inline is not None:
                self._inline.close()
            if self._inline_writes is not None:
                self._inline_writes.close()
            await self._reads.drained()  # a checkpoint asked by the inline writer
            await self._writes.drained()
            self._reads.close()
            self._writes.close()
            self._sqlite.dispose()
            self._executor.shutdown(wait=False)


async def _outlasting_cancellation(future: asyncio.Future[T]) -> T:
    """Await a SQLite write. Cancelling the caller does not stop it: once asked
    for, its transaction runs and may commit. So a cancelled caller waits for
    it to end (commit or roll back) before it re-raises the cancel: the
    caller's own callers (a lease released after the write) see the write
    settled, whichever way it went."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise  # the cancel, not the write's own outcome
