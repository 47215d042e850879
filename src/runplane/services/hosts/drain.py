"""Draining a host: moving its running runtimes off, one restart at a time
each (docs/hosts.md, "Draining a host").

Each round, for every `draining` host, each `running` runtime on it is
restarted by the ordinary restart operation (op_source `reconciler`, reason
`drain`, actor `system:drain`): one operation-log entry, its events, under
the runtime's lease. The restart is what moves it: a runtime on a draining
host is stopped there and started on a host placement chooses (an
operation-log detail `rescheduled: {from, to}`). At most `batch` restarts run
per round, side by side; a round that used its whole batch asks for the next
at once.

Left where they are: runtimes `stopped`, `paused`, `pending`, `error` or
`engine_unreachable` on a draining host (their next start or restart is
placed elsewhere; an unreachable one is the restart policy's), and one in a
transient status (its operation is under way; the next round sees where it
landed). A restart that fails (no other host can take it: `NoHostAvailable`,
a busy lease: `conflict`, an agent away) is logged and tried again next
round. A restart that succeeds but leaves the runtime on the draining host
(a restart that does not re-place) is not repeated for that container."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from prometheus_client import Counter

from runplane.domain.hosts import HostStatus
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.hosts import HostStore
from runplane.ports.lifecycle import RuntimeStore
from runplane.services.hosts.loss import records_on
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle

logger = logging.getLogger(__name__)

DRAIN_ACTOR = "system:drain"
DRAIN_REASON = "drain"

DRAIN_RESTARTS = Counter(
    "runplane_host_drain_restarts_total",
    "Restarts made to move runtimes off draining hosts, by result.",
    ["result"],
)


@dataclass(slots=True)
class DrainRound:
    moved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stayed: list[str] = field(default_factory=list)
    """Restarted, but still on the draining host."""
    more: bool = False
    """The batch was full: more running runtimes may wait on draining hosts."""


class Drainer:
    def __init__(
        self, lifecycle: Lifecycle, runtimes: RuntimeStore, hosts: HostStore, *, batch: int = 4
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.lifecycle = lifecycle
        self.runtimes = runtimes
        self.hosts = hosts
        self.batch = batch
        self._stayed: dict[str, str | None] = {}
        """runtime_id -> the container a restart left on its draining host."""

    def __repr__(self) -> str:
        return f"Drainer(batch={self.batch})"

    async def drain_once(self) -> DrainRound:
        done = DrainRound()
        picked = await self._pick(done)
        results = await asyncio.gather(*(self._move(host, rec) for host, rec in picked))
        for (_, record), result in zip(picked, results, strict=True):
            getattr(done, result).append(record.runtime_id)
        # A full batch that moved nothing must not spin: wait for the next round.
        done.more = done.more and bool(done.moved)
        return done

    async def _pick(self, done: DrainRound) -> list[tuple[str, RuntimeRecord]]:
        picked: list[tuple[str, RuntimeRecord]] = []
        for host in await self.hosts.list(status=HostStatus.DRAINING):
            async for record in records_on(self.runtimes, host.host_id, [Status.RUNNING]):
                if self._stayed.get(record.runtime_id, "") == record.container_id:
                    continue
                if len(picked) == self.batch:
                    done.more = True
                    return picked
                picked.append((host.host_id, record))
        return picked

    async def _move(self, host_id: str, record: RuntimeRecord) -> str:
        fields = {"runtime_id": record.runtime_id, "host_id": host_id}
        request = OperationRequest(
            runtime_id=record.runtime_id,
            op_source=OpSource.RECONCILER,
            reason=DRAIN_REASON,
            actor=DRAIN_ACTOR,
        )
        try:
            result = await self.lifecycle[OpKind.RESTART].handle(request)
        except Exception as exc:  # a store away: this runtime waits for the next round
            logger.warning("drain restart failed", extra=fields | {"error": repr(exc)})
            DRAIN_RESTARTS.labels(result="failed").inc()
            return "failed"
        if not result.ok:
            logger.warning(
                "drain could not move a runtime; trying again next round",
                extra=fields
                | {"error_code": str(result.error_code), "error": result.error_message},
            )
            DRAIN_RESTARTS.labels(result="failed").inc()
            return "failed"
        after = result.record
        if after is not None and after.host_id == host_id:
            self._stayed[record.runtime_id] = after.container_id
            logger.error("drain restart left the runtime on the draining host", extra=fields)
            DRAIN_RESTARTS.labels(result="stayed").inc()
            return "stayed"
        self._stayed.pop(record.runtime_id, None)
        to = after.host_id if after is not None else None
        logger.info("drain moved a runtime", extra=fields | {"to": to})
        DRAIN_RESTARTS.labels(result="moved").inc()
        return "moved"
