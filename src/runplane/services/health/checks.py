"""Questions the health monitor and the reconciler ask about runtimes: every
record of some statuses (page by page), whether a stop (or any other
operation) is in flight for one, so its process ending is no failure, and
which event brought one down (its snapshot row)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from runplane.domain.errors import InvalidSpec
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.spec import HealthCheck, ProbeType, health_check_of
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import HealthSnapshotStore
from runplane.ports.leases import LeaseProbe
from runplane.ports.lifecycle import RuntimeStore


async def records_in(
    runtimes: RuntimeStore, statuses: Iterable[Status], page_size: int = 500
) -> AsyncIterator[RuntimeRecord]:
    """Every record in any of `statuses`, one status after the other."""
    for status in statuses:
        cursor: str | None = None
        while True:
            page = await runtimes.list(status=status, after=cursor, limit=page_size)
            for record in page.records:
                yield record
            cursor = page.next_cursor
            if cursor is None:
                break


async def records_of(
    runtimes: RuntimeStore, statuses: Iterable[Status], page_size: int = 500
) -> list[RuntimeRecord]:
    """`records_in`, the statuses listed together: on SQLite the first pages go to
    its thread in one hand-off, not one each (the reconciler asks for seven
    transient statuses every few seconds, nearly always finding none)."""
    lists = await asyncio.gather(
        *(_all_in(runtimes, status, page_size) for status in statuses), return_exceptions=True
    )
    records: list[RuntimeRecord] = []
    for listed in lists:  # every listing ended first: none fails unheard
        if isinstance(listed, BaseException):
            raise listed
        records.extend(listed)
    return records


async def _all_in(runtimes: RuntimeStore, status: Status, page_size: int) -> list[RuntimeRecord]:
    return [record async for record in records_in(runtimes, [status], page_size)]


async def distinct_records(
    runtimes: RuntimeStore, statuses: Iterable[Status], page_size: int = 500
) -> list[RuntimeRecord]:
    """`records_in`, each runtime once (one that moved between two statuses'
    listings is seen in both)."""
    seen: set[str] = set()
    records: list[RuntimeRecord] = []
    for record in await records_of(runtimes, statuses, page_size):
        if record.runtime_id not in seen:
            seen.add(record.runtime_id)
            records.append(record)
    return records


async def operation_in_flight(
    runtimes: RuntimeStore, leases: LeaseProbe, record: RuntimeRecord
) -> bool:
    """An operation holds the runtime's lease, or the record is no longer the
    `running` one that was read (a stop moved it to `stopping`, a restart
    replaced its container): its container ending is then expected."""
    if await leases.is_held(record.runtime_id):
        return True
    current = await runtimes.get(record.runtime_id)
    return (
        current is None
        or current.status is not Status.RUNNING
        or current.container_id != record.container_id
    )


logger = logging.getLogger(__name__)


def probe_of(record: RuntimeRecord, *, remote: bool) -> HealthCheck | None:
    """The runtime's probe, or None: none declared, malformed (logged), or an
    exec probe of a runtime on another host (`remote`): it runs a command next
    to the runtime, and hosts' agents do not run probes yet (docs/hosts.md)."""
    try:
        check = health_check_of(record.spec)
    except InvalidSpec as exc:
        logger.warning(
            "runtime has a malformed health check; not probing",
            extra={"runtime_id": record.runtime_id, "error": exc.message},
        )
        return None
    if check is not None and check.type is ProbeType.EXEC and remote:
        logger.warning(
            "exec probe of a runtime on another host not run",
            extra={"runtime_id": record.runtime_id, "host_id": record.host_id},
        )
        return None
    return check


async def cause_of(snapshots: HealthSnapshotStore, record: RuntimeRecord) -> HealthEvent | None:
    """The event that brought the runtime down, from its snapshot row; None
    when the row is about another container, or cannot be read."""
    try:
        row = await snapshots.get(record.runtime_id)
    except Exception:
        return None
    if row is None or row.container_id != record.container_id:
        return None
    return HealthEvent(
        record.runtime_id, row.container_id, row.event_type, row.observed_at, row.details
    )
