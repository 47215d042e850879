"""SqlHostStore: host records; status written only by compare-and-set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.outbox import insert_events
from runplane.adapters.sql.tables import hosts
from runplane.domain.hosts import (
    Capacity,
    Host,
    HostConflict,
    HostStatus,
    HostStatusChange,
    Registration,
    require_host_transition,
)
from runplane.domain.lifecycle_events import LifecycleEvent

_GET = DirectStatement(
    select(hosts).where(hosts.c.host_id == bindparam("host_id")), returns=tuple(hosts.c)
)
# Each instance beats every few seconds and its host monitor lists the hosts
# every second: compiled once, run on the loop on SQLite (direct.py).
_BEAT = DirectStatement(
    update(hosts)
    .where(hosts.c.host_id == bindparam("host_id"), hosts.c.last_heartbeat_at < bindparam("at"))
    .values(last_heartbeat_at=bindparam("at"))
)
_LIST = DirectStatement(select(hosts).order_by(hosts.c.host_id), returns=tuple(hosts.c))
_LIST_BY_STATUS = DirectStatement(
    select(hosts).where(hosts.c.status == bindparam("status")).order_by(hosts.c.host_id),
    returns=tuple(hosts.c),
)


def row_to_host(row: Mapping[str, Any] | RowMapping) -> Host:
    return Host(
        host_id=row["host_id"],
        address=row["address"],
        status=HostStatus(row["status"]),
        admin_status=HostStatus(row["admin_status"]),
        version=row["version"],
        registered_at=row["registered_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        labels=dict(row["labels"]),
        capacity=Capacity(row["cpus"], row["memory_mb"], row["max_runtimes"]),
        drivers=tuple(row["drivers"]),
    )


def details(host: Host) -> dict[str, Any]:
    """The columns a registration sets on a host that exists already."""
    return {
        "address": host.address,
        "labels": dict(host.labels),
        "cpus": host.capacity.cpus,
        "memory_mb": host.capacity.memory_mb,
        "max_runtimes": host.capacity.max_runtimes,
        "drivers": list(host.drivers),
    }


class SqlHostStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def register(self, host: Host, *, events: Sequence[LifecycleEvent] = ()) -> Registration:
        row = {
            **details(host),
            "host_id": host.host_id,
            "status": host.status.value,
            "admin_status": host.admin_status.value,
            "version": host.version,
            "registered_at": host.registered_at,
            "last_heartbeat_at": host.last_heartbeat_at,
        }

        def create(connection: Connection) -> RowMapping:
            connection.execute(insert(hosts).values(**row))
            insert_events(connection, events)
            return self._read(connection, host.host_id)

        try:
            return Registration(row_to_host(await self._database.write(create)), created=True)
        except sa_exc.IntegrityError:
            pass  # registered before: update its details below

        def refresh(connection: Connection) -> RowMapping:
            connection.execute(
                update(hosts)
                .where(hosts.c.host_id == host.host_id)
                .values(
                    **details(host),
                    version=hosts.c.version + 1,
                    last_heartbeat_at=host.last_heartbeat_at,
                )
            )
            return self._read(connection, host.host_id)

        return Registration(row_to_host(await self._database.write(refresh)), created=False)

    async def heartbeat(self, host_id: str, at: datetime) -> Host | None:
        parameters = {"host_id": host_id, "at": at}

        def work(connection: Connection) -> dict[str, Any] | None:
            _BEAT.execute_many(connection, [parameters])
            return _GET.first(connection, parameters)

        row = await self._database.write_point(work)
        return None if row is None else row_to_host(row)

    async def compare_and_set(
        self, change: HostStatusChange, *, events: Sequence[LifecycleEvent] = ()
    ) -> Host:
        require_host_transition(change.expected_status, change.status, change.admin_status)
        statement = (
            update(hosts)
            .where(
                hosts.c.host_id == change.host_id,
                hosts.c.status == change.expected_status.value,
                hosts.c.version == change.expected_version,
            )
            .values(
                status=change.status.value,
                admin_status=change.admin_status.value,
                version=change.expected_version + 1,
            )
            .returning(*hosts.c)
        )
        if change.expected_status is HostStatus.DOWN:
            # Back from down only to what its admin last set.
            statement = statement.where(hosts.c.admin_status == change.status.value)
        if change.heartbeat_before is not None:
            statement = statement.where(hosts.c.last_heartbeat_at < change.heartbeat_before)

        def work(connection: Connection) -> RowMapping:
            row = connection.execute(statement).mappings().first()
            if row is None:
                raise HostConflict(change.host_id)
            insert_events(connection, events)
            return row

        return row_to_host(await self._database.write(work))

    async def get(self, host_id: str) -> Host | None:
        # Every start reads its host: compiled once, on asyncpg or the loop (direct.py).
        parameters = {"host_id": host_id}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                found = await _GET.first_native(connection, parameters)
        else:
            found = await self._database.read_point(lambda c: _GET.first(c, parameters))
        return None if found is None else row_to_host(found)

    async def list(
        self, *, status: HostStatus | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Host]:
        if status is None:
            rows = await self._database.read_point(lambda c: _LIST.all(c, {}))
        else:
            parameters = {"status": status.value}
            rows = await self._database.read_point(lambda c: _LIST_BY_STATUS.all(c, parameters))
        # Labels are matched here, not in SQL: JSON queries differ by backend, hosts are few.
        found = [row_to_host(row) for row in rows]
        return [host for host in found if host.matches(labels or {})]

    @staticmethod
    def _read_or_none(connection: Connection, host_id: str) -> RowMapping | None:
        query = select(hosts).where(hosts.c.host_id == host_id)
        return connection.execute(query).mappings().first()

    @classmethod
    def _read(cls, connection: Connection, host_id: str) -> RowMapping:
        row = cls._read_or_none(connection, host_id)
        if row is None:
            raise HostConflict(host_id)
        return row
