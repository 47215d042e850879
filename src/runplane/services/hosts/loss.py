"""What a host's loss does to its runtimes (docs/hosts.md, "Host loss").

`HostLoss` is the host monitor's `HostLossHooks`:

- `on_down(host)`: each `running` runtime recorded on the host gets one
  `host_down` health event on `runtime:health_events` (details: `host_id`).
  The health events applier folds it like any other end: `running ->
  engine_unreachable`, summary `host_down`, then the restart policy
  (`on-failure` counts it as a failure), whose restart places the runtime on
  another host. A `paused` runtime gets the event too and only takes the
  summary (the transition table has no `paused -> engine_unreachable`). A
  runtime in a transient status belongs to the operation (or, once its lease
  has expired, the settler) that moves it; once it lands on `running`,
  `sweep_down` reports it.
- `sweep_down()`: the same for every host that is down now, run every drain
  round: an `on_down` that failed half way (Redis away) or a runtime that
  settled onto a down host after it was marked is reported late, not never.
  Going through the events stream is what makes this safe to repeat: the
  applier folds a duplicate once (a runtime already `engine_unreachable` is
  not listed again; a paused one with the summary already is skipped here).
- `before_up(host_id)`: services/hosts/returning.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection

from prometheus_client import Counter

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.reactions import HealthSummary
from runplane.domain.hosts import Host, HostStatus
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.hosts import HostStore
from runplane.ports.lifecycle import RuntimeStore
from runplane.services.health.reporter import HealthReporter
from runplane.services.hosts.returning import HostReturn

logger = logging.getLogger(__name__)

HOST_DOWN_REPORTED = Counter(
    "runplane_host_down_runtimes_total",
    "host_down health events published for runtimes of a lost host, by the runtime's status.",
    ["status"],
)

AFFECTED = (Status.RUNNING, Status.PAUSED)
"""What a lost host's loss is reported for: the runtimes that were running there."""


async def records_on(
    runtimes: RuntimeStore, host_id: str, statuses: Collection[Status], page_size: int = 200
) -> AsyncIterator[RuntimeRecord]:
    """Every record placed on `host_id` in one of `statuses`."""
    for status in statuses:
        cursor: str | None = None
        while True:
            page = await runtimes.list(
                status=status, host_id=host_id, after=cursor, limit=page_size
            )
            for record in page.records:
                yield record
            cursor = page.next_cursor
            if cursor is None:
                break


class HostLoss:
    """`HostLossHooks` (services/hosts/hooks.py) for the host monitor."""

    def __init__(
        self, runtimes: RuntimeStore, hosts: HostStore, reporter: HealthReporter, back: HostReturn
    ) -> None:
        self.runtimes = runtimes
        self.hosts = hosts
        self.reporter = reporter
        self.back = back
        self._returning: set[str] = set()
        """Hosts seen down here whose return is checked once more after they are up."""

    def __repr__(self) -> str:
        return "HostLoss()"

    async def on_down(self, host: Host) -> None:
        """Report `host_down` for the host's running and paused runtimes. Raises
        StoreUnavailable if the database or Redis is away (`sweep_down` reports
        the rest on a later round)."""
        self._returning.add(host.host_id)
        reported = await self._report(host.host_id)
        logger.warning(
            "host down: its runtimes reported",
            extra={"host_id": host.host_id, "runtimes": reported},
        )

    async def before_up(self, host_id: str) -> bool:
        return await self.back.clear(host_id)

    async def sweep_down(self) -> int:
        """Report what is still `running` (or paused, without the summary) on
        every down host; how many events were published. Then check once more
        each host seen down before that is back (`recheck_returned`)."""
        total = 0
        down = await self.hosts.list(status=HostStatus.DOWN)
        for host in down:
            total += await self._report(host.host_id)
        await self.recheck_returned({host.host_id for host in down})
        return total

    async def recheck_returned(self, down: set[str]) -> None:
        """A restart that read the host as down just before it came back up may
        start its runtime elsewhere after `before_up` looked, skipping the stop
        there. Clearing the host once more after it is up finds that container:
        the restart still holds the lease (False: checked again next round) or
        has written the new host (stopped now). Best effort, in this process's
        memory: a host lost and back between two rounds of another leader is
        not checked again."""
        for host_id in sorted(self._returning - down):
            if await self.hosts.get(host_id) is None or await self.back.clear(host_id):
                self._returning.discard(host_id)
        self._returning |= down

    async def _report(self, host_id: str) -> int:
        reported = 0
        async for record in records_on(self.runtimes, host_id, AFFECTED):
            if (
                record.status is Status.PAUSED
                and record.engine_health == HealthSummary.HOST_DOWN.value
            ):
                continue  # already told; a paused runtime does not move on
            await self.reporter.report(
                record.runtime_id,
                record.container_id or "",
                HealthEventType.HOST_DOWN,
                {"host_id": host_id, "detail": f"host {host_id} missed its heartbeats"},
            )
            HOST_DOWN_REPORTED.labels(status=str(record.status)).inc()
            reported += 1
        return reported
