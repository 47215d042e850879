"""adapters/sql/faults.py: which database errors are StoreUnavailable. Errors
are wrapped the way SQLAlchemy's asyncpg dialect wraps them (a DBAPIError over
the dialect's emulated DBAPI error over asyncpg's own), so a restart's
CannotConnectNowError is tested as it really arrives."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from runplane.adapters.sql.faults import is_unavailable, unavailable_as_store_error
from runplane.domain.errors import StoreUnavailable

DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def as_sqlalchemy_raises_it(error: Exception) -> sa_exc.DBAPIError:
    """`error` (asyncpg's) translated by the dialect, then wrapped by SQLAlchemy."""
    translate = DBAPI._asyncpg_error_translate
    kind = next(translate[cls] for cls in type(error).__mro__ if cls in translate)
    emulated = kind(str(error), error)
    emulated.__cause__ = error
    wrapped = sa_exc.DBAPIError.instance("SELECT 1", None, emulated, DBAPI.Error)
    assert isinstance(wrapped, sa_exc.DBAPIError)
    return wrapped


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CrashShutdownError("terminating connection: crash of another server"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.PostgresConnectionError("connection failure"),
    ],
    ids=type,
)
def test_a_postgres_refusing_or_dropping_connections_is_unavailable(error: Exception) -> None:
    wrapped = as_sqlalchemy_raises_it(error)
    assert type(wrapped) is sa_exc.DBAPIError or isinstance(wrapped, sa_exc.OperationalError)
    assert is_unavailable(wrapped)
    assert is_unavailable(error)  # unwrapped, as a pool or a driver call may raise it


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        OSError(113, "No route to host"),
        sa_exc.OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")),
        sa_exc.InterfaceError("SELECT 1", None, Exception("connection is closed")),
        sa_exc.TimeoutError("QueuePool limit reached, connection timed out"),
    ],
    ids=type,
)
def test_connection_class_errors_are_unavailable(error: Exception) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        as_sqlalchemy_raises_it(asyncpg.UniqueViolationError("duplicate key value")),
        as_sqlalchemy_raises_it(asyncpg.UndefinedColumnError('column "x" does not exist')),
        as_sqlalchemy_raises_it(asyncpg.DataError("invalid input syntax")),
        sa_exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed")),
        sa_exc.ProgrammingError("SELEC", None, sqlite3.ProgrammingError("syntax error")),
        KeyError("status"),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_bugs_and_constraint_violations_stay_what_they_are(error: Exception) -> None:
    assert not is_unavailable(error)
    with pytest.raises(type(error)), unavailable_as_store_error():
        raise error


def test_a_refusal_becomes_store_unavailable_without_its_sql() -> None:
    refused = as_sqlalchemy_raises_it(
        asyncpg.CannotConnectNowError("the database system is shutting down")
    )
    with pytest.raises(StoreUnavailable) as raised, unavailable_as_store_error():
        raise refused
    assert str(raised.value) == "database unavailable: the database system is shutting down"
    assert raised.value.__cause__ is refused
