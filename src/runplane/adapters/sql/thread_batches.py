"""SQLite units of work handed to a thread in batches.

Each hand-off to a thread costs the event loop a future, a wake-up through its
self-pipe and a queue hand-over, and the thread a GIL round: with a stream
job's five units of work (three reads, two writes) that was a quarter of its
CPU. Units of work asked for while a batch runs (or in the same turn of the
loop) go together in the next batch: one hand-off for them all, their results
given back on the loop. Each unit keeps its own outcome: a read's error is that
read's, a write is its own transaction (committed or rolled back on its own),
so batching changes when a unit runs, never what it does.

Each thread keeps its connection open from one batch to the next: opening a
SQLAlchemy Connection (a pool checkout, its events, the Connection object)
for every batch was a tenth of a REST request's CPU. A connection that was
invalidated or closed, or whose batch hit a database error, is replaced at
the next batch."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

T = TypeVar("T")

MAX_BATCH = 64
"""Units per hand-off: bounds how long the first of a batch waits for the last."""

Opening = Callable[[], Connection]


@dataclass(slots=True)
class _Unit(Generic[T]):
    work: Callable[[Connection], T]
    future: asyncio.Future[T]


class ThreadBatches:
    """Runs units of work in `executor`, a batch at a time, on the running
    thread's connection from `opening`; with `transaction_each`, each unit in its own
    transaction on it (`Connection.begin`), as a writer's are. `gate`, if given,
    is held while a batch runs (the SQLite writer lock)."""

    def __init__(
        self,
        executor: Executor,
        opening: Opening,
        *,
        transaction_each: bool,
        gate: asyncio.Lock | None = None,
    ) -> None:
        self._executor = executor
        self._opening = opening
        self._transaction_each = transaction_each
        self._gate = gate
        self._pending: list[_Unit[Any]] = []
        self._runner: asyncio.Task[None] | None = None
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._opened_lock = threading.Lock()

    def submit(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        """`work`'s result (or exception), once its batch has run. Cancelling the
        future does not stop the unit once handed over; see SqlDatabase.write."""
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop.create_future())
        self._pending.append(unit)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._drain(), name="sqlite batches")
        return unit.future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # the rest of this turn's units join the first batch
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            cancel: asyncio.CancelledError | None = None
            try:
                async with self._gate if self._gate is not None else contextlib.nullcontext():
                    handed = asyncio.get_running_loop().run_in_executor(
                        self._executor, self._run, [unit.work for unit in batch]
                    )
                    try:
                        outcomes = await asyncio.shield(handed)
                    except asyncio.CancelledError as exc:
                        # The loop is ending. The thread goes on, and its writes
                        # may commit: their callers hear how they ended, not the cancel.
                        cancel = exc
                        while not handed.done():
                            with contextlib.suppress(asyncio.CancelledError):
                                await asyncio.wait([handed])
                        outcomes = handed.result()
            except BaseException as exc:  # the hand-off itself failed
                for unit in batch + self._pending:
                    _settle(unit, False, exc)
                self._pending = []
                raise
            for unit, (ok, value) in zip(batch, outcomes, strict=True):
                _settle(unit, ok, value)
            if cancel is not None:
                for unit in self._pending:
                    unit.future.cancel()
                self._pending = []
                raise cancel

    def _run(self, works: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        """In the thread: every unit, each outcome caught as its own."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            connection = self._connection()
        except Exception as exc:  # the connection could not be opened
            return [(False, exc)] * len(works)
        failed = False
        for work in works:
            try:
                if self._transaction_each:
                    with connection.begin():
                        outcomes.append((True, work(connection)))
                else:
                    outcomes.append((True, work(connection)))
            except Exception as exc:
                failed = failed or (
                    isinstance(exc, sa_exc.DBAPIError)
                    and not isinstance(exc, sa_exc.IntegrityError)
                )
                outcomes.append((False, exc))
        try:
            if connection.in_transaction():  # a read's implicit one: nothing to keep
                connection.rollback()
        except Exception:
            failed = True
        if failed:
            self._drop(connection)
        return outcomes

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None and not (connection.closed or connection.invalidated):
            return connection
        if connection is not None:
            self._drop(connection)
        connection = self._opening()
        self._local.connection = connection
        with self._opened_lock:
            self._opened.append(connection)
        return connection

    def _drop(self, connection: Connection) -> None:
        """Forget and close a connection that may be broken; the next batch opens one."""
        self._local.connection = None
        with self._opened_lock:
            if connection in self._opened:
                self._opened.remove(connection)
        with contextlib.suppress(Exception):
            connection.invalidate()  # closed, not put back in the pool for reuse
            connection.close()

    async def drained(self) -> None:
        """Once every unit handed over has run: a thread must not be inside
        SQLite on a connection `close` closes (a crash in libsqlite3, not an
        error). Units nobody awaits (a checkpoint) may still be running."""
        while self._runner is not None and not self._runner.done():
            await asyncio.wait([self._runner])

    def close(self) -> None:
        """Close every thread's kept connection (at shutdown, after `drained`)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            with contextlib.suppress(Exception):
                connection.close()


def _settle(unit: _Unit[Any], ok: bool, value: Any) -> None:
    if unit.future.done():  # its caller was cancelled and gave up on a read
        return
    if isinstance(value, asyncio.CancelledError):
        unit.future.cancel()
    elif ok:
        unit.future.set_result(value)
    else:
        unit.future.set_exception(value)
