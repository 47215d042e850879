"""A lost host coming back: before it is `up` again, stop whatever still runs
there although its runtime has moved on (docs/hosts.md, "A host comes back").

While a host is down, a runtime of it with a restart policy is started again
elsewhere; the host itself may only have been cut off (a partition), its
processes running on. So before the monitor marks it up, `clear(host_id)`
asks the host's agent for its containers and, for every live one
(running/paused) that is no longer its runtime's, stops and removes it there:
its record is missing, `stopped` or `removed`, or names another host or
another container. A container whose record still names this host and this
container was not moved (no restart policy, or no other host could take it):
it is left running, and the health monitor brings the runtime back (`probe_recovered`).

Each stop is made holding the runtime's lease, inside its driver-call context
(`driver_call.holding` + `at_version`), so the agent's fence admits it and no
operation on the runtime runs meanwhile. A busy lease, or an agent that does
not answer, leaves the host down for this tick (`clear` answers False) and
the monitor asks again on the next."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from prometheus_client import Counter

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import ContainerGone, DriverError
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.drivers import Driver
from runplane.ports.hosts import HostStore
from runplane.services import driver_call, lease
from runplane.services.lifecycle.dependencies import Dependencies

logger = logging.getLogger(__name__)

STOPPED_ON_RETURN = Counter(
    "runplane_host_return_stopped_total",
    "Containers a returning host was made to stop because their runtime had moved on.",
)
RETURN_DEFERRED = Counter(
    "runplane_host_return_deferred_total",
    "Times a returning host was kept down for a tick, by why.",
    ["reason"],
)

_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)
_LEFT = (Status.STOPPED, Status.REMOVED)


class Deferred(Exception):
    """This tick cannot finish clearing the host; the monitor asks again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Found:
    driver: Driver
    driver_name: str
    info: ContainerInfo


def moved_away(record: RuntimeRecord | None, host_id: str, container_id: str) -> bool:
    """Whether a live container on `host_id` is no longer its runtime's. A record
    with no host (written before placement) is not taken for moved: it belongs
    to the host that ran it, and stopping it would stop a runtime that a plain
    `serve` restart left running."""
    if record is None or record.status in _LEFT:
        return True
    if record.host_id is None:
        return False
    return record.host_id != host_id or record.container_id != container_id


class HostReturn:
    def __init__(self, deps: Dependencies, hosts: HostStore, *, lease_wait_ms: int = 0) -> None:
        self.deps = deps
        self.hosts = hosts
        self.lease_wait_ms = lease_wait_ms

    def __repr__(self) -> str:
        return "HostReturn()"

    async def clear(self, host_id: str) -> bool:
        """True when nothing that moved away still runs on the host (it may come up)."""
        fields = {"host_id": host_id}
        try:
            found = await self._live_containers(host_id)
            stopped = 0
            for item in found:
                stopped += await self._stop_if_moved(host_id, item)
        except Deferred as exc:
            RETURN_DEFERRED.labels(reason=exc.reason).inc()
            logger.warning("returning host kept down for now", extra=fields | {"why": exc.reason})
            return False
        if stopped:
            logger.warning(
                "returning host: stopped runtimes that had moved away",
                extra=fields | {"stopped": stopped},
            )
        return True

    async def _live_containers(self, host_id: str) -> list[Found]:
        host = await self.hosts.get(host_id)
        names = host.drivers if host is not None else tuple(self.deps.drivers)
        found: list[Found] = []
        for name in names:
            driver = self.deps.driver_on(host_id, name)
            if driver is None:
                raise Deferred("no_driver")  # this instance cannot reach the host's driver
            try:
                listed = await driver.list_containers()
            except DriverError as exc:
                logger.warning(
                    "returning host's agent did not list its containers",
                    extra={"host_id": host_id, "driver": name, "error": str(exc)},
                )
                raise Deferred("agent_unreachable") from exc
            found.extend(Found(driver, name, info) for info in listed if info.state in _LIVE)
        return found

    async def _stop_if_moved(self, host_id: str, item: Found) -> int:
        """1 if the container was stopped and removed, 0 if it stays."""
        runtime_id = item.info.runtime_id
        container_id = item.info.container_id
        if not runtime_id:
            # No runtime to fence the call with: the reconciler's orphan pass
            # (stop_orphans) is the one that deals with such containers.
            logger.info(
                "returning host: a container of no runtime left alone",
                extra={"host_id": host_id, "container_id": container_id},
            )
            return 0
        record = await self.deps.runtimes.get(runtime_id)
        if not moved_away(record, host_id, container_id):
            return 0
        deps = self.deps
        token = deps.tokens.new_token()
        if not await lease.acquire(
            deps.leases, runtime_id, token, deps.lease_ttl_ms, self.lease_wait_ms
        ):
            raise Deferred("lease_busy")
        async with lease.kept_alive(deps.leases, runtime_id, token, deps.lease_ttl_ms):
            # Read again under the lease: an operation may have finished meanwhile.
            record = await deps.runtimes.get(runtime_id)
            if not moved_away(record, host_id, container_id):
                return 0
            with driver_call.holding(runtime_id, token):
                driver_call.at_version(record.version if record is not None else 0)
                await self._stop_and_remove(item)
        STOPPED_ON_RETURN.inc()
        logger.warning(
            "returning host: stopped a container whose runtime moved away",
            extra={
                "host_id": host_id,
                "runtime_id": runtime_id,
                "container_id": container_id,
                "driver": item.driver_name,
                "now_on": record.host_id if record is not None else None,
            },
        )
        return 1

    async def _stop_and_remove(self, item: Found) -> None:
        container_id = item.info.container_id
        try:
            with contextlib.suppress(ContainerGone):
                await item.driver.stop(container_id)
            await item.driver.remove(container_id)
        except ContainerGone:
            return
        except DriverError as exc:
            logger.warning(
                "returning host: a moved runtime's container not stopped",
                extra={"container_id": container_id, "error": str(exc)},
            )
            raise Deferred("stop_failed") from exc
