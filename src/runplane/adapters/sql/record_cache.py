"""Records already built, reused while their row has not changed.

A list of 1,000 running runtimes every second (the health monitor's round)
spent most of its time building records: the spec's JSON, six timestamps, a
dict per row. Every write of a runtime row either bumps `version` (a CAS, a
create) or sets `engine_health` and `updated_at` (a health summary), so those
three columns mark a row's content: a list first reads only them, then the
full rows of the marks it has not seen, and reuses the rest."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, select

from runplane.adapters.sql.tables import runtimes
from runplane.domain.records import RuntimeRecord

Mark = tuple[int, datetime, str | None]

MARK_COLUMNS = (
    runtimes.c.runtime_id,
    runtimes.c.version,
    runtimes.c.updated_at,
    runtimes.c.engine_health,
)


def mark_of(row: RowMapping | RuntimeRecord) -> Mark:
    if isinstance(row, RuntimeRecord):
        return (row.version, row.updated_at, row.engine_health)
    return (row["version"], row["updated_at"], row["engine_health"])


class RecordCache:
    """At most `size` records (the least recently listed go first), so a store
    of 100,000 runtimes keeps no second copy of them all."""

    def __init__(self, size: int = 5000) -> None:
        self._size = size
        self._records: OrderedDict[str, RuntimeRecord] = OrderedDict()
        self._lock = threading.Lock()  # reads run in the database's threads

    def fresh(self, runtime_id: str, mark: Mark) -> RuntimeRecord | None:
        with self._lock:
            record = self._records.get(runtime_id)
            if record is None or mark_of(record) != mark:
                return None
            self._records.move_to_end(runtime_id)
            return record

    def keep(self, record: RuntimeRecord) -> None:
        with self._lock:
            self._records[record.runtime_id] = record
            self._records.move_to_end(record.runtime_id)
            while len(self._records) > self._size:
                self._records.popitem(last=False)


def read_page(
    connection: Connection, query: Select[Any], cache: RecordCache
) -> tuple[Sequence[RowMapping], list[RuntimeRecord | str]]:
    """`query`'s marks, in order: each a cached record, or its runtime_id
    whose full row is among the rows returned (read on the same connection;
    a row deleted in between is simply not there)."""
    marks = connection.execute(query.with_only_columns(*MARK_COLUMNS)).mappings().all()
    slots: list[RuntimeRecord | str] = []
    missing: list[str] = []
    for row in marks:
        record = cache.fresh(row["runtime_id"], mark_of(row))
        slots.append(record if record is not None else row["runtime_id"])
        if record is None:
            missing.append(row["runtime_id"])
    rows: Sequence[RowMapping] = []
    if missing:
        full = select(runtimes).where(runtimes.c.runtime_id.in_(missing))
        rows = connection.execute(full).mappings().all()
    return rows, slots
