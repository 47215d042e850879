"""SQLite point reads on the event loop itself.

A read handed to a thread costs a future, a self-pipe wake-up of the loop, a
queue hand-over and a GIL round: with the REST path's three point reads (the
screen's record, the record under the lease, the team's policy) about a tenth
of a request's CPU, several times what the read itself costs (a primary-key
lookup in a WAL database, microseconds). So the hottest reads, all by primary
or unique key through a compiled statement, run on the loop, on a connection
of the loop's own that never waits for a lock (`busy_timeout=0`). A WAL reader
rarely meets one (WAL recovery after a crash, a truncating checkpoint); when it
does, or the read fails in any database way, the read is handed to the reader
threads as before, which wait on the full busy timeout and map errors as
before. So the loop is never held longer than the read itself."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

T = TypeVar("T")

logger = logging.getLogger(__name__)


class InlineReader:
    """One kept connection from `opening`, used only on the event loop's thread."""

    PRAGMAS: tuple[str, ...] = ("PRAGMA busy_timeout=0",)
    """Set on the kept connection when it is opened."""

    def __init__(self, opening: Callable[[], Connection]) -> None:
        self._opening = opening
        self._connection: Connection | None = None

    def try_read(self, work: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """(True, `work`'s result), or (False, None) when the database was busy
        or failed: the caller then reads through the threads."""
        try:
            connection = self._kept()
        except sa_exc.DBAPIError:
            return False, None
        try:
            return True, work(connection)
        except sa_exc.DBAPIError:
            logger.debug("inline read handed to a thread", exc_info=True)
            self.close()  # a fresh connection next time: this one may be broken
            return False, None
        finally:
            if not connection.closed and connection.in_transaction():
                connection.rollback()

    def _kept(self) -> Connection:
        connection = self._connection
        if connection is not None and not (connection.closed or connection.invalidated):
            return connection
        connection = self._opening()
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for pragma in self.PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()  # its busy timeout is not the pool's
                connection.close()
