"""How runplane's SQLite connections are set up (the pragmas) and how their
transactions begin (engine.py listens with these to its engines' events)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
SQLITE_BEGIN_OPTION = "runplane_sqlite_begin"
READ_WITHOUT_TRANSACTION = "NONE"
"""Reads run one statement each: in SQLite's autocommit mode a SELECT is its own
consistent snapshot, and skipping BEGIN and ROLLBACK saves two round trips to
aiosqlite's thread per read."""


def prepare_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
    # The sqlite3 module's own BEGIN comes late (before the first INSERT/UPDATE,
    # never before DDL); `begin_sqlite_transaction` issues it instead.
    dbapi_connection.isolation_level = None


def begin_sqlite_transaction(connection: Connection) -> None:
    """BEGIN IMMEDIATE for writes (the write lock is taken up front, waiting on the
    busy timeout, so a transaction never fails upgrading a read to a write),
    plain BEGIN for reads. Migrations' DDL runs in the transaction too."""
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    if mode == READ_WITHOUT_TRANSACTION:
        return
    # On the DBAPI cursor: `exec_driver_sql`'s execution context was a tenth of
    # a write's CPU. Its errors (a lock not had within the busy timeout) are
    # raised as SQLAlchemy's, as `exec_driver_sql` would.
    dbapi_connection = connection.connection.dbapi_connection
    if getattr(dbapi_connection, "in_transaction", False):  # aiosqlite's adapter has none
        return  # begun on the DBAPI connection already (inline_writes.py)
    sql = f"BEGIN {mode}"
    dialect = connection.dialect
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    except dialect.loaded_dbapi.Error as exc:
        raise sa_exc.DBAPIError.instance(
            sql, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    finally:
        cursor.close()
