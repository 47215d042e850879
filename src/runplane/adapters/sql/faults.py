"""Which database errors mean "the database cannot be reached": the one place
the SQL adapter decides between StoreUnavailable (a fault a retry may outlive)
and an exception that stays what it is (a bug, a constraint violation).

Drivers wrap their errors differently: SQLAlchemy raises OperationalError or
InterfaceError for most lost connections, but asyncpg's server-side refusals
(CannotConnectNowError while Postgres starts or shuts down, AdminShutdownError
on `pg_ctl stop -m fast`, TooManyConnectionsError) arrive as a bare DBAPIError
whose driver error carries the SQLSTATE. So the whole chain of an error is
looked at: the error, its `orig` (SQLAlchemy's DBAPI error, and the driver's
error under an emulated one) and its cause. Not its context: an error raised
while another was being handled is not a fault of that other."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

from runplane.domain.errors import StoreUnavailable

UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08"})
"""Class 08, connection exception (asyncpg's PostgresConnectionError family:
ConnectionDoesNotExistError 08003, ConnectionFailureError 08006, ...)."""

UNAVAILABLE_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: AdminShutdownError (pg_ctl stop/restart -m fast)
        "57P02",  # crash_shutdown: CrashShutdownError
        "57P03",  # cannot_connect_now: CannotConnectNowError (starting or shutting down)
        "57P05",  # idle_session_timeout: the server closed the session
        "53300",  # too_many_connections: TooManyConnectionsError
    }
)

_CHAIN_LIMIT = 8


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (or is locked, or is
    refusing connections for now), as opposed to a bug or a constraint violation."""
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError):
        return False
    return any(_says_unavailable(link) for link in _chain(exc))


def _says_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True  # ConnectionRefusedError and TimeoutError are OSErrors
    if isinstance(exc, sa_exc.TimeoutError):
        return True  # no pooled connection came free in time
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return False
    return sqlstate in UNAVAILABLE_SQLSTATES or sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then the errors it wraps, each once, a bounded number of them."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < _CHAIN_LIMIT:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        for wrapped in (getattr(link, "orig", None), link.__cause__):
            if isinstance(wrapped, BaseException):
                pending.append(wrapped)


@contextlib.contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Raise connection failures as StoreUnavailable (without SQL or parameters)."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise StoreUnavailable(f"database unavailable: {_cause_of(exc)}") from exc


def _cause_of(exc: BaseException) -> BaseException:
    """The driver's own error, for a message without SQL or parameters."""
    cause: BaseException = exc
    while isinstance(cause, sa_exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    return cause
