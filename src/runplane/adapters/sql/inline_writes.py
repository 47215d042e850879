"""SQLite's short writes on the event loop itself, when the write lock is free.

A compare-and-swap with its operation-log entry and outbox rows is a few
compiled statements and a commit: in WAL mode with synchronous=NORMAL a commit
appends to the WAL without an fsync, tens of microseconds. Handed to the writer
thread it cost a future, a task, a self-pipe wake-up and a GIL round on each
side, more than the write. So, as the point reads (inline_reads.py), such a
write runs on a connection of the loop's own that never waits for a lock
(`busy_timeout=0`):

- only when this process's writer lock is free (`SqlDatabase.write_point`),
  so it never overtakes the writes queued for the thread; and being
  synchronous, nothing runs on the loop while it does;
- when BEGIN IMMEDIATE finds the database locked (another process writes) or
  the write fails in any database way, it has rolled back: it is then handed
  to the writer thread as before (full busy timeout, same error mapping).
  Errors of the work itself (a lost compare-and-swap, a taken job_id) are its
  answer, as on the thread;
- its connection never checkpoints (`wal_autocheckpoint=0`: a checkpoint
  fsyncs, and would hold the loop for it); every `CHECKPOINT_EVERY` inline
  commits a passive checkpoint is asked of a reader thread instead.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.inline_reads import InlineReader
from runplane.adapters.sql.thread_batches import ThreadBatches

T = TypeVar("T")

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 200
"""Inline commits between two checkpoints asked of a thread (a commit of a CAS
writes a few pages; SQLite's own default is a checkpoint per 1,000 pages)."""


class InlineWriter(InlineReader):
    """One kept writer connection, used only on the event loop's thread;
    `checkpoint` asks a thread for a passive WAL checkpoint."""

    PRAGMAS = (*InlineReader.PRAGMAS, "PRAGMA wal_autocheckpoint=0")

    def __init__(self, opening: Callable[[], Connection], checkpoint: Callable[[], object]) -> None:
        super().__init__(opening)
        self._checkpoint = checkpoint
        self._commits = 0

    def try_write(self, work: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """(True, `work`'s result) once committed, or (False, None) when the
        database was locked or failed (rolled back: the caller hands it on)."""
        try:
            connection = self._kept()
        except sa_exc.DBAPIError:
            return False, None
        # The transaction on the DBAPI connection itself: SQLAlchemy's
        # `connection.begin()` (a transaction object, its begin event issuing
        # the BEGIN, its commit path) cost more than the compiled statements in
        # it. Its commit and rollback events are still dispatched, so their
        # listeners (the outbox relay's wake-up, outbox.watch_commits) see this
        # transaction as before. Work that executes through SQLAlchemy makes it
        # begin a transaction of its own (whose BEGIN is skipped: one is open,
        # engine.py), which is then ended through SQLAlchemy.
        dbapi = connection.connection.dbapi_connection
        try:
            dbapi.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            try:
                result = work(connection)
                if connection.in_transaction():
                    connection.commit()
                else:
                    connection.dispatch.commit(connection)
                    dbapi.commit()  # type: ignore[union-attr]
            except BaseException:
                if connection.in_transaction():
                    connection.rollback()
                else:
                    connection.dispatch.rollback(connection)
                    dbapi.rollback()  # type: ignore[union-attr]
                raise
        except (sa_exc.DBAPIError, sqlite3.Error):
            logger.debug("inline write handed to a thread", exc_info=True)
            self.close()  # a fresh connection next time: this one may be broken
            return False, None
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._commits = 0
            self._checkpoint()
        return True, result


def checkpoint_on(readers: ThreadBatches) -> Callable[[], asyncio.Future[Any]]:
    """Asks `readers` (connections outside any transaction) for a passive WAL
    checkpoint, whose row (busy, WAL frames, frames checkpointed) the future
    holds; a failure is logged, and the next one tries again."""

    def checkpoint(connection: Connection) -> Any:
        return tuple(connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one())

    def ask() -> asyncio.Future[Any]:
        asked = readers.submit(checkpoint)
        asked.add_done_callback(_log_failure)
        return asked

    return ask


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        logger.warning("wal checkpoint failed", exc_info=done.exception())
