"""Postgres units of work straight on asyncpg, for the hot statements.

Through SQLAlchemy's asyncio layer every unit of work is a greenlet run
(`run_sync`) and every statement goes through its asyncpg adapter (a mutex,
its own prepared-statement cache, cursor emulation, a greenlet switch per
await): most of a stream job's CPU on Postgres, where the raw floor pays only
asyncpg. The hot statements (direct.py) therefore run on the asyncpg
connection itself, taken from SQLAlchemy's pool (same connections, same JSON
codecs, same checkout check), with asyncpg's own prepared-statement cache, in
autocommit: a hot write is one statement (cas.py), its own transaction.
Errors are raised as SQLAlchemy's (the adapter's translation, then
`DBAPIError.instance`), and a lost connection is invalidated, so callers and
faults.py see what `Connection.execute` raises."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Dialect
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from runplane.adapters.sql.faults import unavailable_as_store_error

T = TypeVar("T")


class NativeConnection:
    """An asyncpg connection checked out of the engine's pool, for one unit of work."""

    def __init__(self, fairy: PoolProxiedConnection, dialect: Dialect) -> None:
        self._fairy = fairy
        self.dialect = dialect
        self.asyncpg: Any = fairy.driver_connection
        self.outbox_written = False
        """Set by an outbox insert: its commit wakes the relay (`outbox_committed`)."""

    async def run(self, sql: str, call: Awaitable[T]) -> T:
        """`call`'s result; its error raised as SQLAlchemy would raise it."""
        try:
            return await call
        except Exception as error:
            raise await self._translated(sql, error) from error

    async def _translated(self, sql: str, error: Exception) -> Exception:
        dbapi_error_class = self.dialect.loaded_dbapi.Error
        adapter: Any = self._fairy.dbapi_connection
        try:
            adapter._handle_exception(error)  # raises the adapter's DBAPI error for it
        except dbapi_error_class as translated:
            dbapi_error = translated
        except Exception as other:  # not a database error (an OSError, say): as it is
            return other
        lost = self.dialect.is_disconnect(dbapi_error, adapter, None)
        if lost:
            with contextlib.suppress(Exception):
                await greenlet_spawn(self._fairy.invalidate, dbapi_error)
        wrapped: Exception = sa_exc.DBAPIError.instance(
            sql,
            None,
            dbapi_error,
            dbapi_error_class,
            hide_parameters=True,
            dialect=self.dialect,
            connection_invalidated=lost,
        )
        return wrapped


PARKED_MAX = 4
"""Connections a finished unit of work keeps for the next one, at most."""
PARKED_FOR_S = 0.05
"""How long they are kept before going back to the pool when no unit takes them."""


class NativeUnits:
    """Hands out NativeConnections from `engine`'s pool.

    A pool checkout and check-in each run in a greenlet (SQLAlchemy's pool is
    synchronous code that may await): for a stream job's units of work (a read
    and two writes), about a tenth of its CPU when measured. So a unit that
    ends cleanly leaves its connection parked for the next unit to take as it
    is, up to PARKED_MAX of them; those no unit took within PARKED_FOR_S go
    back to the pool together. A parked connection whose server end was seen
    closing is not reused (as the pool's checkout check does)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.outbox_committed: Callable[[], None] | None = None
        """Called after a write that put events in the outbox commits."""
        self._parked: list[PoolProxiedConnection] = []
        self._return_timer: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[NativeConnection]:
        """Statements in autocommit: a SELECT is its own snapshot."""
        async with self._checked_out() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[NativeConnection]:
        """Statements in autocommit, each its own transaction: a write that is
        one statement (cas.py) needs no BEGIN and COMMIT round trips."""
        async with self._checked_out() as connection:
            yield connection
        if connection.outbox_written and self.outbox_committed is not None:
            self.outbox_committed()

    @contextlib.asynccontextmanager
    async def _checked_out(self) -> AsyncIterator[NativeConnection]:
        with unavailable_as_store_error():
            fairy = await self._take()
            clean = False
            try:
                yield NativeConnection(fairy, self._engine.dialect)
                clean = True
            finally:
                if not (clean and self._park(fairy)):
                    # Back to the pool (its reset, or a close, may await: in a greenlet).
                    await greenlet_spawn(fairy.close)

    async def _take(self) -> PoolProxiedConnection:
        while self._parked:
            fairy = self._parked.pop()
            driver: Any = fairy.driver_connection
            if fairy.is_valid and not driver.is_closed():
                return fairy
            await greenlet_spawn(fairy.close)  # seen closing: the pool drops it
        return await self._engine.raw_connection()

    def _park(self, fairy: PoolProxiedConnection) -> bool:
        """Keep `fairy` for the next unit; False when it must go back now."""
        if len(self._parked) >= PARKED_MAX or not fairy.is_valid:
            return False
        driver: Any = fairy.driver_connection
        if driver.is_in_transaction():
            return False
        self._parked.append(fairy)
        if self._return_timer is None:
            loop = asyncio.get_running_loop()
            self._return_timer = loop.call_later(PARKED_FOR_S, self._return_parked)
        return True

    def _return_parked(self) -> None:
        self._return_timer = None
        parked, self._parked = self._parked, []
        if parked:
            task = asyncio.get_running_loop().create_task(self._close_all(parked))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)

    async def close(self) -> None:
        """Every parked connection back to the pool (before it is disposed)."""
        if self._return_timer is not None:
            self._return_timer.cancel()
            self._return_timer = None
        parked, self._parked = self._parked, []
        await self._close_all(parked)
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    @staticmethod
    async def _close_all(fairies: list[PoolProxiedConnection]) -> None:
        for fairy in fairies:
            with contextlib.suppress(Exception):
                await greenlet_spawn(fairy.close)
