"""The reconciler: compares the records with what the drivers report, once at
start-up and then every `interval_s` (plus up to `jitter_s`), one instance at
a time (the lease `lease:{runplane:reconciler}`).

Each round:
1. settles runtimes stuck in a transient status past their `status_deadline`
   (TransientSettler: operation-log entry op_source=reconciler, inferred);
2. reports a `running` runtime whose process or container ended or vanished
   (`container_exited` / `container_disappeared`), unless an operation is in
   flight or the health monitor already reported it (they share a reporter);
   one listing per driver a round serves this and 3 (kept for the monitor);
3. reports live containers carrying runplane's marks (a runtime id) that no
   record points to — orphans — and stops them when `stop_orphans` is set;
4. asks the restart policy again about `engine_unreachable` runtimes, so a
   restart whose delay was lost to a runplane restart still happens."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from prometheus_client import Counter

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import ContainerGone, DriverError
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import TRANSIENT, Status
from runplane.ports.drivers import Driver
from runplane.ports.leases import LeaseProbe
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.system import Clock
from runplane.services.health.checks import cause_of, operation_in_flight, records_in, records_of
from runplane.services.health.listings import Listings
from runplane.services.health.reporter import HealthReporter
from runplane.services.hosts.routing import DriverRoute, HostDirectory
from runplane.services.lifecycle.settler import TransientSettler
from runplane.workers.leadership import Leadership
from runplane.workers.periodic import PeriodicLoop
from runplane.workers.restarts import RestartScheduler

logger = logging.getLogger(__name__)

_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)

Listing = dict[str, ContainerInfo]
"""A driver's containers, by container id."""

REPAIRS = Counter(
    "runplane_reconciler_repairs_total", "What the reconciler found and did, by kind.", ["kind"]
)


class Reconciler:
    def __init__(
        self,
        runtimes: RuntimeStore,
        drivers: Mapping[str, Driver],
        settler: TransientSettler,
        reporter: HealthReporter,
        leases: LeaseProbe,
        clock: Clock,
        *,
        leadership: Leadership | None = None,
        restarts: RestartScheduler | None = None,
        route: DriverRoute | None = None,
        hosts: HostDirectory | None = None,
        hold: Callable[[str], AbstractAsyncContextManager[bool]] | None = None,
        interval_s: float = 30.0,
        jitter_s: float = 5.0,
        settle_interval_s: float = 5.0,
        settle_after_s: float = 0.0,
        stop_orphans: bool = False,
        listings: Listings | None = None,
    ) -> None:
        if interval_s <= 0 or jitter_s < 0:
            raise ValueError("interval_s must be positive and jitter_s not negative")
        self.runtimes = runtimes
        self.drivers = drivers
        self.route = route or (lambda _host, name: drivers.get(name))
        self.hosts = hosts
        self.hold = hold
        self.settler = settler
        self.reporter = reporter
        self.leases = leases
        self.clock = clock
        self.leadership = leadership
        self.restarts = restarts
        self.interval_s = interval_s
        self.jitter_s = jitter_s
        self.stop_orphans = stop_orphans
        self.settle_after = timedelta(seconds=settle_after_s)
        self.listings = listings
        """Where each round's listings are kept for the health monitor's sweep."""
        self._loop = PeriodicLoop(
            "reconciler", self.reconcile_once, interval_s=interval_s, jitter_s=jitter_s
        )
        if leadership is not None:  # a new leader reconciles at once, not a round later
            leadership.on_change(self._loop.wake)
        # Interrupted operations are settled sooner than a full round comes, on
        # every instance (each settlement holds its runtime's lease): a runtime a
        # kill left transient is settled about when the dead holder's lease ends.
        # Its lease is tried once the status is `settle_after_s` old: a dead
        # holder's lease outlives its last status change by two thirds of a TTL
        # (renewals come every third), and a lease taken just as an operation
        # ends would answer its caller's next call `conflict`.
        self._settling = PeriodicLoop(
            "interrupted settling", self.settle_interrupted, interval_s=settle_interval_s
        )

    def __repr__(self) -> str:
        return "Reconciler()"

    def request_stop(self) -> None:
        self._loop.request_stop()
        self._settling.request_stop()

    async def run(self) -> None:
        try:
            await asyncio.gather(self._loop.run(), self._settling.run())
        finally:
            if self.leadership is not None:
                await self.leadership.release()

    async def reconcile_once(self) -> Tally[str]:
        """One round; what it repaired or reported, by kind (empty when not leading)."""
        found: Tally[str] = Tally()
        if self.leadership is not None and not await self.leadership.hold():
            return found
        found.update(await self.settle_interrupted())
        # Each driver's containers listed once, before the records: the running
        # check reads states from it, the orphan check its live containers.
        drivers = await self._every_driver()
        listings = {id(driver): await self._list(driver, host_id) for host_id, driver in drivers}
        running = await self._check_running(found, listings)
        for host_id, driver in drivers:
            containers = listings[id(driver)]
            if containers is not None:
                await self._check_orphans(driver, found, host_id, running, containers.values())
        await self._revisit_unreachable(found)
        for kind, count in found.items():
            REPAIRS.labels(kind=kind).inc(count)
        if found:
            logger.info("reconciler round done", extra=dict(found))
        return found

    async def settle_interrupted(self) -> Tally[str]:
        """Settle every runtime in a transient status whose lease nobody holds: the
        operation that entered it is gone (the settler checks under the lease)."""
        found: Tally[str] = Tally()
        if not await self.runtimes.any_in(TRANSIENT):  # nearly always: no listing
            return found
        transient = await records_of(self.runtimes, sorted(TRANSIENT))
        entered_before = self.clock.now() - self.settle_after
        for record in transient:
            if record.last_op_at is not None and record.last_op_at > entered_before:
                continue  # its holder's lease cannot have run out yet
            if await self.settler.settle(record.runtime_id) is not None:
                found[f"settled_{record.status}"] += 1
        return found

    async def _every_driver(self) -> list[tuple[str | None, Driver]]:
        """Each driver of each host that answers (without hosts: the local ones)."""
        if self.hosts is None:
            return [(None, driver) for driver in self.drivers.values()]
        found: list[tuple[str | None, Driver]] = []
        for host_id, kinds in (await self.hosts.reachable()).items():
            for kind in kinds:
                driver = self.route(host_id, kind)
                if driver is not None:
                    found.append((host_id, driver))
        return found

    async def _list(self, driver: Driver, host_id: str | None) -> Listing | None:
        """The driver's containers by id; None when it cannot list them (logged)."""
        try:
            containers = await driver.list_containers()
        except DriverError as exc:
            logger.warning("containers not listed", extra={"host_id": host_id, "error": str(exc)})
            return None
        if self.listings is not None:
            self.listings.keep(driver, containers)
        return {c.container_id: c for c in containers}

    async def _check_running(
        self, found: Tally[str], listings: Mapping[int, Listing | None]
    ) -> dict[str, RuntimeRecord]:
        """Report the ends of running runtimes; the running records, by id. A
        container its driver's listing showed live is not looked at again (its
        end since is the monitor's and the exit watcher's, or the next round's);
        any other is inspected now, as each was before."""
        running: dict[str, RuntimeRecord] = {}
        lost = await self.hosts.unreachable() if self.hosts is not None else frozenset()
        async for record in records_in(self.runtimes, [Status.RUNNING]):
            running[record.runtime_id] = record
            if record.host_id in lost:
                continue
            driver = self.route(record.host_id, record.driver)
            if driver is None or not record.container_id:
                continue
            if self.reporter.terminal_reported(record.runtime_id, record.container_id):
                continue
            listed = (listings.get(id(driver)) or {}).get(record.container_id)
            if listed is not None and listed.state in _LIVE:
                continue
            try:
                info = await driver.inspect(record.container_id)
            except DriverError:
                continue  # the monitor reports inspect failures
            if info.state in _LIVE:
                continue
            if await operation_in_flight(self.runtimes, self.leases, record):
                continue
            event = await self.reporter.report_end(record.runtime_id, info)
            found[str(event.event_type)] += 1
        return running

    async def _check_orphans(
        self,
        driver: Driver,
        found: Tally[str],
        host_id: str | None,
        running: Mapping[str, RuntimeRecord],
        containers: Iterable[ContainerInfo],
    ) -> None:
        for info in containers:
            if info.state not in _LIVE or not info.runtime_id:
                continue
            # The running record just listed names it: no read per container.
            record = running.get(info.runtime_id)
            if (
                record is not None
                and record.container_id == info.container_id
                and (host_id is None or record.host_id in (host_id, None))
            ):
                continue
            if await self._is_orphan(driver, info, host_id):
                found["orphan"] += 1
                logger.warning(
                    "orphan container found",
                    extra={"runtime_id": info.runtime_id, "container_id": info.container_id},
                )
                if self.stop_orphans and await self._stop(driver, info):
                    found["orphan_stopped"] += 1

    async def _is_orphan(self, driver: Driver, info: ContainerInfo, host_id: str | None) -> bool:
        """No record points to it, and no operation may be about to (transient
        status, lease held). Looked at again after reading the record: a restart
        may have stopped it meanwhile."""
        runtime_id = info.runtime_id or ""
        record = await self.runtimes.get(runtime_id)
        owned = host_id is None or record is None or record.host_id in (host_id, None)
        if record is not None and (
            (owned and record.container_id == info.container_id) or record.status in TRANSIENT
        ):
            return False
        if await self.leases.is_held(runtime_id):
            return False
        try:
            return (await driver.inspect(info.container_id)).state in _LIVE
        except DriverError:
            return False

    async def _stop(self, driver: Driver, info: ContainerInfo) -> bool:
        """Stop an orphan under its runtime's lease (a host's agent acts only for
        the holder); a busy lease: an operation is on it, look again next round."""
        if self.hold is None:
            return await self._stop_held(driver, info)
        async with self.hold(info.runtime_id or "") as held:
            return held and await self._stop_held(driver, info)

    async def _stop_held(self, driver: Driver, info: ContainerInfo) -> bool:
        try:
            await driver.stop(info.container_id)
        except ContainerGone:
            return False
        except DriverError as exc:
            logger.warning(
                "orphan container not stopped",
                extra={"container_id": info.container_id, "error": str(exc)},
                exc_info=exc,
            )
            return False
        return True

    async def _revisit_unreachable(self, found: Tally[str]) -> None:
        if self.restarts is None:
            return
        async for record in records_in(self.runtimes, [Status.ENGINE_UNREACHABLE]):
            if record.runtime_id in self.restarts.pending:
                continue
            cause = await cause_of(self.reporter.snapshots, record)
            if await self.restarts.on_unreachable(record, cause, quiet=True):
                found["restart_requeued"] += 1
