"""SqlOutbox: lifecycle events committed with the writes they describe."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    any_,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import outbox
from runplane.domain.lifecycle_events import LifecycleEvent, OutboxEvent

EVENT_COLUMNS = ("event_id", "runtime_id", "team_id", "type", "durable", "payload", "created_at")
_INSERT = DirectStatement(insert(outbox).inline(), column_keys=EVENT_COLUMNS)
"""Compiled once, run on the DBAPI cursor (direct.py): every change writes events.
`sent_at` is left out: NULL until the relay sends the event."""
_PENDING = DirectStatement(
    select(outbox)
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.seq)
    .limit(bindparam("limit")),
    returns=tuple(outbox.c),
)
"""The relay reads this every round, and after every change: compiled once."""
_MARK_SENT = (
    update(outbox)
    .where(outbox.c.seq.in_(bindparam("seqs", expanding=True)))
    .values(sent_at=bindparam("at"))
)
_MARK_SENT_NATIVE = DirectStatement(
    update(outbox)
    .where(outbox.c.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
    .values(sent_at=bindparam("at"))
)
"""Postgres's form of _MARK_SENT: one array parameter, so one prepared statement
for any number of events (an expanding IN is a new statement per count)."""
_OLDEST = select(func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
_WROTE = "runplane.outbox_written"
"""Set in a connection's `info` by `insert_events`; taken by the commit (or
rollback) of its transaction."""


def insert_events(connection: Connection, events: Sequence[LifecycleEvent]) -> None:
    """Put `events` in the outbox inside the caller's transaction."""
    if events:
        _INSERT.execute_many(connection, event_rows(events))
        connection.info[_WROTE] = True


def event_rows(events: Sequence[LifecycleEvent]) -> list[dict[str, Any]]:
    """`events` as outbox rows (EVENT_COLUMNS)."""
    return [
        {
            "event_id": event.id,
            "runtime_id": event.runtime_id,
            "team_id": event.team_id,
            "type": event.type,
            "durable": event.durable,
            "payload": event.to_json(),
            "created_at": event.time,
        }
        for event in events
    ]


def watch_commits(database: SqlDatabase, committed: Callable[[], None]) -> None:
    """Call `committed` whenever a transaction of `database` that put events in
    the outbox commits, so the relay need not poll for them. It runs in the
    thread that commits (a SQLite worker thread, or the event loop's), just
    before the database's own commit: `committed` must be thread-safe, and a
    reader it wakes may miss the row by a hair (the relay then finds it at its
    next, short, poll)."""

    def on_commit(connection: Connection) -> None:
        if connection.info.pop(_WROTE, False):
            committed()

    def on_rollback(connection: Connection) -> None:
        connection.info.pop(_WROTE, None)

    engines: list[Engine] = [database.engine.sync_engine, *database.sync_engines()]
    for engine in engines:
        event.listen(engine, "commit", on_commit)
        event.listen(engine, "rollback", on_rollback)
    if database.native is not None:  # Postgres writes on asyncpg itself (native_pg.py)
        database.native.outbox_committed = committed


class SqlOutbox:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def pending(self, *, limit: int = 500) -> list[OutboxEvent]:
        parameters = {"limit": limit}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                rows = await _PENDING.all_native(connection, parameters)
        else:
            rows = await self._database.read(lambda c: _PENDING.all(c, parameters))
        return [
            OutboxEvent(
                seq=row["seq"],
                event_id=row["event_id"],
                runtime_id=row["runtime_id"],
                team_id=row["team_id"],
                type=row["type"],
                durable=row["durable"],
                payload=row["payload"],
                created_at=row["created_at"],
            )
            for row in rows
        ]

    async def mark_sent(self, seqs: Sequence[int], at: datetime) -> None:
        if not seqs:
            return
        parameters = {"seqs": list(seqs), "at": at}
        if (native := self._database.native) is not None:
            # One statement, its own transaction: no BEGIN and COMMIT round trips.
            async with native.autocommit() as connection:
                await _MARK_SENT_NATIVE.execute_many_native(connection, (parameters,))
            return
        # A short keyed UPDATE, on the loop like a compare-and-swap: through the
        # writer thread, each relay round would hold the write lock a hand-off long.
        await self._database.write_point(
            lambda connection: connection.execute(_MARK_SENT, parameters)
        )

    async def oldest_pending_at(self) -> datetime | None:
        oldest: datetime | None = await self._database.read(
            lambda connection: connection.execute(_OLDEST).scalar()
        )
        return oldest
