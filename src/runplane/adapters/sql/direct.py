"""Hot statements compiled once per dialect and run on the DBAPI cursor.

SQLAlchemy's per-execution work (execution context, parameter construction,
result metadata, the bind and result processors called through its layers)
was about a third of a stream job's CPU on SQLite, for statements whose SQL
never changes. A `DirectStatement` is a Core statement compiled once per
dialect; each execution converts the parameters with the very bind and result
processors SQLAlchemy would have used (UtcDateTime, JSON) and calls the DBAPI
cursor of the caller's connection, inside the caller's transaction: sqlite3's
statement cache and the asyncpg adapter's prepared-statement cache then reuse
the prepared statement. Schema, migrations and the rest of the queries stay
plain SQLAlchemy Core. DBAPI errors are raised as SQLAlchemy's own exception
classes (IntegrityError, OperationalError...), a lost connection invalidated,
as `Connection.execute` would, so callers and faults.py see no difference."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Dialect
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.expression import Executable

from runplane.adapters.sql.native_pg import NativeConnection
from runplane.adapters.sql.tables import as_given

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    binds: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(position, processor) of the binds that have one: most (strings,
    integers) have none, and are passed as they are."""
    columns: tuple[str, ...]
    results: tuple[tuple[int, str, Callable[[Any], Any]], ...]
    """(position, column, processor) of the result columns that have one."""
    defaults: dict[str, Any]
    """Binds the statement gives a value itself (an OFFSET 0 on SQLite, say)."""


class DirectStatement:
    """`statement` (positional binds only, no expanding ones) compiled for each
    dialect it meets. `column_keys` names an INSERT's columns (the others are
    left out); `returns` the columns its rows carry, in order, for `first`/`all`."""

    def __init__(
        self,
        statement: Executable,
        *,
        column_keys: Sequence[str] | None = None,
        returns: Sequence[ColumnElement[Any]] = (),
    ) -> None:
        self._statement = statement
        self._column_keys = None if column_keys is None else list(column_keys)
        self._returns = tuple(returns)
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=self._column_keys)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        binds = tuple(
            (position, process)
            for position, name in enumerate(names)
            if (process := _bind_processor(compiled.binds[name].type, dialect)) is not None
        )
        columns = tuple(str(column.key) for column in self._returns)
        results = tuple(
            (position, str(column.key), process)
            for position, column in enumerate(self._returns)
            if (process := _result_processor(column, dialect)) is not None
        )
        defaults = {
            name: compiled.binds[name].effective_value
            for name in names
            if not compiled.binds[name].required
        }
        return _Compiled(compiled.string, names, binds, columns, results, defaults)

    def _arguments(self, compiled: _Compiled, parameters: Mapping[str, Any]) -> list[Any]:
        if compiled.defaults:
            parameters = {**compiled.defaults, **parameters}
        arguments = [parameters[name] for name in compiled.names]
        for position, process in compiled.binds:
            arguments[position] = process(arguments[position])
        return arguments

    def _row(self, compiled: _Compiled, row: Sequence[Any]) -> dict[str, Any]:
        values = dict(zip(compiled.columns, row, strict=True))
        for position, key, process in compiled.results:
            values[key] = process(row[position])
        return values

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as {column: value}, or None."""
        compiled = self._for(connection.dialect)
        arguments = self._arguments(compiled, parameters)
        cursor = _cursor(connection)
        with _as_sqlalchemy_errors(connection, compiled.sql, cursor):
            cursor.execute(compiled.sql, arguments)
            row = cursor.fetchone()
        cursor.close()
        return None if row is None else self._row(compiled, row)

    def all(self, connection: Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = self._for(connection.dialect)
        arguments = self._arguments(compiled, parameters)
        cursor = _cursor(connection)
        with _as_sqlalchemy_errors(connection, compiled.sql, cursor):
            cursor.execute(compiled.sql, arguments)
            rows = cursor.fetchall()
        cursor.close()
        return [self._row(compiled, row) for row in rows]

    def execute_many(self, connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """One statement per row, in one DBAPI `executemany` (no rows back)."""
        compiled = self._for(connection.dialect)
        arguments = [self._arguments(compiled, row) for row in rows]
        cursor = _cursor(connection)
        with _as_sqlalchemy_errors(connection, compiled.sql, cursor):
            if len(arguments) == 1:
                cursor.execute(compiled.sql, arguments[0])
            else:
                cursor.executemany(compiled.sql, arguments)
        cursor.close()

    async def first_native(
        self, connection: NativeConnection, parameters: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """`first` on asyncpg itself (native_pg.py)."""
        compiled = self._for(connection.dialect)
        arguments = self._arguments(compiled, parameters)
        row = await connection.run(
            compiled.sql, connection.asyncpg.fetchrow(compiled.sql, *arguments)
        )
        return None if row is None else self._row(compiled, row)

    async def all_native(
        self, connection: NativeConnection, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """`all` on asyncpg itself (native_pg.py)."""
        compiled = self._for(connection.dialect)
        arguments = self._arguments(compiled, parameters)
        rows = await connection.run(
            compiled.sql, connection.asyncpg.fetch(compiled.sql, *arguments)
        )
        return [self._row(compiled, row) for row in rows]

    async def execute_many_native(
        self, connection: NativeConnection, rows: Iterable[Mapping[str, Any]]
    ) -> None:
        """`execute_many` on asyncpg itself (native_pg.py)."""
        compiled = self._for(connection.dialect)
        arguments = [self._arguments(compiled, row) for row in rows]
        if len(arguments) == 1:
            call = connection.asyncpg.execute(compiled.sql, *arguments[0])
        else:
            call = connection.asyncpg.executemany(compiled.sql, arguments)
        await connection.run(compiled.sql, call)


def _bind_processor(sql_type: Any, dialect: Dialect) -> Processor:
    """The processor SQLAlchemy applies to a bound value of `sql_type`, or a
    type's own quicker one that gives the same values (`direct_bind_processor`)."""
    direct = getattr(sql_type, "direct_bind_processor", None)
    quick: Processor = direct(dialect) if direct is not None else None
    if quick is not None:
        return quick
    chained: Processor = sql_type._cached_bind_processor(dialect)
    return chained


def _result_processor(column: ColumnElement[Any], dialect: Dialect) -> Processor:
    """The processor SQLAlchemy applies to `column`'s values, or the type's own
    quicker one (`direct_result_processor`; none when it answers `as_given`).
    Compiled once, there is no cursor to give the column's DBAPI type code;
    the only type that asks for one (a Float on asyncpg) gets its values as
    Python floats from the driver already, and needs none."""
    direct = getattr(column.type, "direct_result_processor", None)
    quick = direct(dialect) if direct is not None else None
    if quick is as_given:
        return None
    if quick is not None:
        return quick  # type: ignore[no-any-return]
    try:
        return column.type._cached_result_processor(dialect, None)
    except (sa_exc.InvalidRequestError, TypeError):
        return None


def _cursor(connection: Connection) -> Any:
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:  # pragma: no cover - a closed connection
        raise sa_exc.ResourceClosedError("this connection is closed")
    return dbapi_connection.cursor()


class _as_sqlalchemy_errors:
    """The DBAPI's errors as SQLAlchemy raises them from `Connection.execute`:
    its exception classes (`orig` the driver's error), and a connection the
    dialect says is lost invalidated, so the pool opens a new one."""

    __slots__ = ("_connection", "_cursor", "_sql")

    def __init__(self, connection: Connection, sql: str, cursor: Any) -> None:
        self._connection = connection
        self._sql = sql
        self._cursor = cursor

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, _traceback: Any) -> Literal[False]:
        dialect = self._connection.dialect
        dbapi = dialect.loaded_dbapi
        if error is None or not isinstance(error, dbapi.Error):
            return False
        lost = dialect.is_disconnect(
            error,
            self._connection.connection.dbapi_connection,
            self._cursor,
        )
        wrapped = sa_exc.DBAPIError.instance(
            self._sql,
            None,
            error,
            dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=lost,
        )
        if lost:
            self._connection.invalidate(error)
        raise wrapped from error
