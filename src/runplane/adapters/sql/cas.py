"""The compare-and-swap's statements: the conditional UPDATE of a record, and
on Postgres the whole write (UPDATE, operation-log entry, outbox events) as
one statement.

A CAS is a transaction of up to five round trips when each statement is sent
on its own (BEGIN, UPDATE, the entry's INSERT, the events' INSERT, COMMIT).
On Postgres each round trip costs the caller a send, a wakeup and a reply to
parse, and the server a backend's turn: on one connection a CAS cost 1.2 to
1.3 ms of the caller's CPU and 1.3 to 1.4 ms of the server's that way, 0.38
to 0.41 and 0.45 to 0.49 as one statement (bench/pg_round_trips.py). So there
the UPDATE is a data-modifying CTE (`moved`) and the INSERTs select from it:
one statement, one implicit transaction, the same outcome. No row moved:
nothing is inserted and the statement returns no row (CasConflict). A taken
job_id: the INSERT's unique violation undoes the whole statement, UPDATE
included (DuplicateJobId). SQLite keeps the statements in one transaction on
the event loop (inline_writes.py), where a statement costs no round trip."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    bindparam,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.native_pg import NativeUnits
from runplane.adapters.sql.operation_log import entry_row, taken_job_id
from runplane.adapters.sql.outbox import EVENT_COLUMNS, event_rows
from runplane.adapters.sql.tables import operations, outbox, runtimes
from runplane.domain.errors import CasConflict
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.records import OperationEntry, StatusChange


def cas_predicates(
    checks_container: bool, expects_no_container: bool
) -> tuple[ColumnElement[bool], ...]:
    """The row a change expects: same id, status and version [and container_id],
    as bound parameters (`expected_*`), so one statement serves every change."""
    predicates = (
        runtimes.c.runtime_id == bindparam("expected_runtime_id"),
        runtimes.c.status == bindparam("expected_status"),
        runtimes.c.version == bindparam("expected_version"),
    )
    if not checks_container:
        return predicates
    container = runtimes.c.container_id
    if expects_no_container:
        return (*predicates, container.is_(None))
    return (*predicates, container == bindparam("expected_container_id"))


def cas_parameters(change: StatusChange, values: dict[str, Any]) -> dict[str, Any]:
    parameters = {f"new_{name}": value for name, value in values.items()}
    parameters.update(
        expected_runtime_id=change.runtime_id,
        expected_status=change.expected_status.value,
        expected_version=change.expected_version,
    )
    if change.checks_container and change.expected_container_id is not None:
        parameters["expected_container_id"] = change.expected_container_id
    return parameters


def _cas_update(
    columns: tuple[str, ...], checks_container: bool, expects_no_container: bool
) -> Update:
    return (
        update(runtimes)
        .where(*cas_predicates(checks_container, expects_no_container))
        .values({name: bindparam(f"new_{name}") for name in columns})
        .returning(*runtimes.c)
    )


def _shape(change: StatusChange, values: dict[str, Any]) -> tuple[tuple[str, ...], bool, bool]:
    """What the CAS UPDATE's SQL depends on: the columns set, the container check."""
    checks = change.checks_container
    return tuple(sorted(values)), checks, checks and change.expected_container_id is None


@functools.lru_cache(maxsize=256)
def _cas_statement(
    columns: tuple[str, ...], checks_container: bool, expects_no_container: bool
) -> DirectStatement:
    """The CAS UPDATE for one shape of change, compiled once per shape and run
    on the DBAPI cursor (direct.py): SQLAlchemy's per-execution work was most
    of a CAS's CPU time."""
    return DirectStatement(
        _cas_update(columns, checks_container, expects_no_container), returns=tuple(runtimes.c)
    )


def cas_statement(change: StatusChange, values: dict[str, Any]) -> DirectStatement:
    return _cas_statement(*_shape(change, values))


@functools.lru_cache(maxsize=256)
def _whole_cas(
    shape: tuple[tuple[str, ...], bool, bool], entry_columns: tuple[str, ...], events: int
) -> DirectStatement:
    """The CAS with its entry (when `entry_columns`) and `events` events, for
    one shape: compiled once per shape, entry and count of events."""
    moved = _cas_update(*shape).cte("moved")
    statement: Select[Any] = select(moved)
    if entry_columns:
        values = [bindparam(f"entry_{c}", type_=operations.c[c].type) for c in entry_columns]
        logged = insert(operations).from_select(entry_columns, select(*values).select_from(moved))
        statement = statement.add_cte(logged.cte("logged"))
    if events:
        rows = [
            select(
                literal_column(str(n)).label("n"),
                *(
                    bindparam(f"event{n}_{c}", type_=outbox.c[c].type).label(c)
                    for c in EVENT_COLUMNS
                ),
            ).select_from(moved)
            for n in range(events)
        ]
        told = union_all(*rows).subquery("told")
        # In the order given: the outbox's seq is the order events are sent in.
        ordered = select(*(told.c[c] for c in EVENT_COLUMNS)).order_by(told.c.n)
        statement = statement.add_cte(insert(outbox).from_select(EVENT_COLUMNS, ordered).cte())
    return DirectStatement(statement, returns=tuple(runtimes.c))


async def compare_and_swap_native(
    native: NativeUnits,
    change: StatusChange,
    values: dict[str, Any],
    entry: OperationEntry | None,
    events: Sequence[LifecycleEvent],
) -> dict[str, Any]:
    """The CAS, its entry and its events in one statement on asyncpg: the moved
    row, CasConflict when none moved, DuplicateJobId when the entry's job_id
    is taken (nothing written then)."""
    parameters = cas_parameters(change, values)
    entry_columns: tuple[str, ...] = ()
    if entry is not None:
        row = entry_row(entry)
        entry_columns = tuple(row)
        parameters.update({f"entry_{c}": v for c, v in row.items()})
    for n, event in enumerate(event_rows(events)):
        parameters.update({f"event{n}_{c}": v for c, v in event.items()})
    statement = _whole_cas(_shape(change, values), entry_columns, len(events))
    async with native.autocommit() as connection:
        try:
            moved = await statement.first_native(connection, parameters)
        except sa_exc.IntegrityError as exc:
            duplicate = None if entry is None else taken_job_id(entry, exc)
            if duplicate is None:
                raise
            raise duplicate from exc
        connection.outbox_written = moved is not None and bool(events)
    if moved is None:
        raise CasConflict(change.runtime_id, change.expected_status.value)
    return moved
