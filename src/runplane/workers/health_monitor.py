"""The health monitor: every `interval_s`, look at the runtimes that should be
running (and those marked `engine_unreachable`, to see them come back; which
ones each round: see "Told, then swept" below), and report what changed to
`runtime:health_events`.

- A process or container that ended: `container_exited` (exit code, signal),
  `container_oom` when the driver says the kernel killed it for memory, or
  `container_disappeared` when the driver no longer knows it. Reported once per
  container, and never while a stop is in flight: the record is no longer
  `running`, or an operation holds the runtime's lease (its stop may be killing
  the process right now — a SIGKILL after a stop timeout is not an OOM).
- A container seen for the first time: `container_started`.
- The driver failing to inspect it, or a `running` runtime found paused:
  `inspect_unhealthy`, once; `probe_recovered` when that clears.
- Probes from the spec's `health` (ProbeTracker): `probe_failed` once when the
  threshold is crossed, `probe_recovered` on the first success after it. Each
  runtime has at most one probe in flight, run beside the loop so a slow
  target never delays noticing another runtime's exit.
One instance monitors at a time when a Leadership is given.

Told, then swept (`sweep_s`): the ends of runtimes on the `told` drivers are
reported by the hosts themselves as they happen (workers/exit_watch.py for
process runtimes, the engine's event stream for docker), so a round looks only
at the runtimes that need it: one seen for the first time, one with a probe
due, one `engine_unreachable` or found unwell, one on another driver. Every
`sweep_s` a round looks at all of them (a quiet one a fresh container listing
shows running excepted: services/health/listings.py): it finds an
end a host missed (a lost notice, a watcher not running, a folder removed
behind runplane's back) and a runtime paused by hand. The first round after a
start is a sweep, so ends while runplane was down are found at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from datetime import datetime

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import DriverError
from runplane.domain.health.events import HealthEventType
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.drivers import Driver
from runplane.ports.health import Prober
from runplane.ports.leases import LeaseProbe
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.system import Clock
from runplane.services.health.checks import distinct_records, operation_in_flight
from runplane.services.health.listings import Listings
from runplane.services.health.reporter import HealthReporter
from runplane.services.health.watches import (
    Watch,
    cancel_probe,
    first_watch,
    may_want_look,
    run_probe,
    wants_look,
)
from runplane.services.hosts.routing import DriverRoute, HostDirectory
from runplane.workers.leadership import Leadership
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)

WATCHED = (Status.RUNNING, Status.ENGINE_UNREACHABLE)


class HealthMonitor:
    def __init__(
        self,
        runtimes: RuntimeStore,
        drivers: Mapping[str, Driver],
        reporter: HealthReporter,
        prober: Prober,
        leases: LeaseProbe,
        clock: Clock,
        *,
        leadership: Leadership | None = None,
        route: DriverRoute | None = None,
        hosts: HostDirectory | None = None,
        local_host_id: str | None = None,
        interval_s: float = 1.0,
        page_size: int = 500,
        max_concurrency: int = 32,
        told: Collection[str] = (),
        sweep_s: float | None = None,
        changes: Callable[[], Awaitable[object]] | None = None,
        listings: Listings | None = None,
    ) -> None:
        if interval_s <= 0 or max_concurrency < 1 or (sweep_s is not None and sweep_s <= 0):
            raise ValueError("interval_s and sweep_s must be positive, max_concurrency at least 1")
        self.runtimes = runtimes
        self.drivers = drivers
        self.route = route or (lambda _host, name: drivers.get(name))
        self.hosts = hosts
        self.local_host_id = local_host_id
        self.reporter = reporter
        self.prober = prober
        self.leases = leases
        self.clock = clock
        self.leadership = leadership
        self.interval_s = interval_s
        self.page_size = page_size
        self._concurrency = max_concurrency
        self.told = frozenset(told)
        """Drivers whose ends the hosts report themselves: looked at by sweeps."""
        self.sweep_s = sweep_s
        """Every round looks at every runtime when None."""
        self._swept_at: datetime | None = None
        self.changes = changes
        """A mark that moves when a record may have changed (the newest lifecycle
        event's id): rounds list only then, and in sweeps. None: every round."""
        self.listings = listings  # fresh ones: a sweep reads quiet runtimes' states there
        self._mark: object = None
        self._next_mark: object = None
        self._records: list[RuntimeRecord] = []
        # The records a round between sweeps may look at (`may_want_look`): at
        # idle without probes none, so a round does not pass over them all.
        self._attention: list[RuntimeRecord] | None = None
        self._watches: dict[str, Watch] = {}
        self._loop = PeriodicLoop("health monitor", self.tick, interval_s=interval_s)
        if leadership is not None:
            leadership.on_change(self._loop.wake)

    def __repr__(self) -> str:
        return "HealthMonitor()"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        try:
            await self._loop.run()
        finally:
            await self._drop(set(self._watches))
            if self.leadership is not None:
                await self.leadership.release()

    async def tick(self) -> None:
        """One round over the watched runtimes that need a look (all of them in a sweep)."""
        if self.leadership is not None and not await self.leadership.hold():
            await self._drop(set(self._watches))
            return
        now = self.clock.now()
        sweep = self._sweep_due(now)
        listed = await self._changed() or sweep
        if listed:
            mark = self._next_mark  # read before the listing: a later change lists again
            self._records = await distinct_records(self.runtimes, WATCHED, self.page_size)
            self._mark = mark
            self._attention = None
            if sweep:
                self._swept_at = now
        records = self._records
        if not sweep:
            watches, told = self._watches, self.told
            if self._attention is None:  # made again only after a listing or a look
                self._attention = [
                    r for r in records if may_want_look(watches.get(r.runtime_id), r, told)
                ]
            records = [
                r for r in self._attention if wants_look(watches.get(r.runtime_id), r, told, now)
            ]
            if not records and not listed:
                return  # nothing due: no host to ask about either
        elif self.listings is not None:
            w, sweep_s = self._watches, self.sweep_s or self.interval_s
            records = self.listings.still_to_look_at(records, w, self.told, self.route, sweep_s)
        self._attention = None  # a look changes watches (first sight, unwell, dropped)
        # A down host's runtimes cannot be looked at: the host monitor reported them.
        lost = await self.hosts.unreachable() if self.hosts is not None else frozenset()
        if lost:
            records = [r for r in records if r.host_id not in lost]
        # A few workers share one iterator, not a task per runtime (tasks cost more).
        queue = iter(records)
        workers = min(self._concurrency, len(records))
        await asyncio.gather(*(self._check_each(queue) for _ in range(workers)))
        # Unseen (gone, or on a down host): dropped, and made afresh on return.
        seen = {r.runtime_id for r in self._records if r.host_id not in lost}
        await self._drop(set(self._watches) - seen)

    def _sweep_due(self, now: datetime) -> bool:
        if self.sweep_s is None or self._swept_at is None:
            return True
        return (now - self._swept_at).total_seconds() >= self.sweep_s

    async def _changed(self) -> bool:
        """Whether the records may have changed since the last listing: always,
        without `changes`, or when its mark cannot be read."""
        if self.changes is None:
            return True
        try:
            self._next_mark = await self.changes()
        except Exception as exc:
            logger.warning("runtime changes not known; listing", extra={"error": repr(exc)})
            self._next_mark = None
            return True
        return self._next_mark is None or self._next_mark != self._mark

    async def _check_each(self, queue: Iterator[RuntimeRecord]) -> None:
        for record in queue:
            try:
                await self._check(record)
            except Exception as exc:
                logger.warning(
                    "health check of a runtime failed",
                    extra={"runtime_id": record.runtime_id, "error": repr(exc)},
                    exc_info=exc,
                )

    async def probes_done(self) -> None:
        """Wait for the probes in flight (tests, shutdown)."""
        probes = [w.probe for w in self._watches.values() if w.probe is not None]
        await asyncio.gather(*probes, return_exceptions=True)

    # -- one runtime ------------------------------------------------------------------

    async def _check(self, record: RuntimeRecord) -> None:
        driver = self.route(record.host_id, record.driver)
        if driver is None or not record.container_id:
            return
        watch = self._watches.get(record.runtime_id)
        if watch is None or watch.container_id != record.container_id:
            if watch is not None:
                await self._drop({record.runtime_id})
            watch = await self._first_sight(record, record.container_id)
            self._watches[record.runtime_id] = watch
        try:
            info = await driver.inspect(record.container_id)
        except DriverError as exc:
            await self._unwell(record, watch, {"error": str(exc)})
            return
        if info.state is ContainerState.RUNNING:
            await self._alive(record, watch)
        elif info.state is ContainerState.PAUSED:
            if record.status is Status.RUNNING:
                await self._unwell(record, watch, {"detail": "the container is paused"})
        else:
            await self._ended(record, watch, info)

    def _remote(self, record: RuntimeRecord) -> bool:
        return self.hosts is not None and record.host_id not in (None, self.local_host_id)

    async def _first_sight(self, record: RuntimeRecord, container_id: str) -> Watch:
        remote = self._remote(record)
        return await first_watch(self.reporter, self.clock, record, container_id, remote=remote)

    async def _alive(self, record: RuntimeRecord, watch: Watch) -> None:
        if watch.unwell:
            await self._report(record, HealthEventType.PROBE_RECOVERED, {"detail": "inspect ok"})
            watch.unwell = False
        if record.status is Status.RUNNING and not watch.announced:
            await self._report(record, HealthEventType.CONTAINER_STARTED, {})
            watch.announced = True
        elif (
            record.status is Status.ENGINE_UNREACHABLE
            and watch.tracker is None
            and not watch.back_reported
        ):
            detail = {"detail": "the container is running again"}
            await self._report(record, HealthEventType.PROBE_RECOVERED, detail)
            watch.back_reported = True
        tracker = watch.tracker
        if tracker is not None and watch.probe is None and tracker.due(self.clock.now()):
            watch.probe = asyncio.create_task(
                run_probe(self.prober, self.reporter, self.clock, record, watch, tracker)
            )

    async def _unwell(
        self, record: RuntimeRecord, watch: Watch, details: Mapping[str, object]
    ) -> None:
        if not watch.unwell:
            await self._report(record, HealthEventType.INSPECT_UNHEALTHY, details)
            watch.unwell = True

    async def _ended(self, record: RuntimeRecord, watch: Watch, info: ContainerInfo) -> None:
        container_id = info.container_id
        if record.status is not Status.RUNNING:
            return
        if self.reporter.terminal_reported(record.runtime_id, container_id):
            return
        if await operation_in_flight(self.runtimes, self.leases, record):
            return
        await self.reporter.report_end(record.runtime_id, info)
        await cancel_probe(watch)

    async def _report(
        self, record: RuntimeRecord, event_type: HealthEventType, details: Mapping[str, object]
    ) -> None:
        await self.reporter.report(
            record.runtime_id, record.container_id or "", event_type, details
        )

    async def _drop(self, runtime_ids: set[str]) -> None:
        for runtime_id in runtime_ids:
            watch = self._watches.pop(runtime_id, None)
            if watch is not None:
                await cancel_probe(watch)
                self.reporter.forget(runtime_id)
