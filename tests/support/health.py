"""Health monitoring on the fakes world: a driver that can OOM-kill its
containers and start strays, a prober tests script, and every health part
wired to the world's stores."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.probes import ProbeResult, ProbeTarget
from runplane.domain.health.spec import HealthCheck
from runplane.services.health.applier import HealthEventApplier, UnreachableHook
from runplane.services.health.reporter import HealthReporter
from runplane.services.health.restart_policy import RestartPolicyService
from runplane.services.lifecycle.settler import TransientSettler
from runplane.testing.driver import InMemoryDriver, MemoryContainer
from runplane.testing.health import (
    InMemoryEngineHealthStore,
    InMemoryHealthEventReader,
    InMemoryHealthEvents,
    InMemoryHealthSnapshotStore,
    InMemorySnapshotPublisher,
)
from runplane.testing.leases import InMemoryLeaseProbe
from runplane.workers.health_monitor import HealthMonitor
from runplane.workers.reconciler import Reconciler
from runplane.workers.restarts import RestartScheduler
from tests.support.world import World


class MarkingDriver(InMemoryDriver):
    """InMemoryDriver that can OOM-kill and start strays. `before_inspect`, when
    set, runs (once) as an inspect begins: a race."""

    before_inspect: Callable[[], Awaitable[None]] | None = None

    async def inspect(self, container_id: str) -> ContainerInfo:
        hook, self.before_inspect = self.before_inspect, None
        if hook is not None:
            await hook()
        return await super().inspect(container_id)

    def oom_kill(self, container_id: str) -> None:
        """The kernel killed it for memory: SIGKILL, and the engine says OOM."""
        self.exit(container_id, 137, 9)
        container = self.containers[container_id]
        info = replace(container.info, oom_killed=True)
        self._containers[container_id] = replace(container, info=info)

    def start_stray(self, runtime_id: str) -> str:
        """A live container for `runtime_id` that no record knows about."""
        self._started += 1
        container_id = f"m-{self._started}"
        info = ContainerInfo(container_id, ContainerState.RUNNING)
        self._containers[container_id] = MemoryContainer(runtime_id, {}, info)
        return container_id


@dataclass
class ScriptedProber:
    """Answers each runtime's probes from a script (then ok); counts calls."""

    script: dict[int | None, deque[bool]] = field(default_factory=lambda: defaultdict(deque))
    calls: int = 0

    def fail(self, times: int, port: int | None = None) -> None:
        self.script[port].extend([False] * times)

    async def probe(self, check: HealthCheck, target: ProbeTarget) -> ProbeResult:
        self.calls += 1
        queue = self.script.get(target.port)
        ok = queue.popleft() if queue else True
        return ProbeResult(ok, 0.001, "scripted ok" if ok else "scripted failure")


@dataclass
class HealthWorld:
    world: World
    driver: MarkingDriver
    events: InMemoryHealthEvents = field(default_factory=InMemoryHealthEvents)
    rows: InMemoryHealthSnapshotStore = field(default_factory=InMemoryHealthSnapshotStore)
    snapshots: InMemorySnapshotPublisher = field(default_factory=InMemorySnapshotPublisher)
    prober: ScriptedProber = field(default_factory=ScriptedProber)

    @classmethod
    def build(cls) -> HealthWorld:
        driver = MarkingDriver()
        return cls(World.build(driver), driver)

    def __post_init__(self) -> None:
        self.reporter = HealthReporter(self.events, self.rows, self.world.clock)
        self.lease_probe = InMemoryLeaseProbe(self.world.leases)
        self.reader = InMemoryHealthEventReader(self.events)
        self.delivered = 0

    def monitor(self, **options: Any) -> HealthMonitor:
        w = self.world
        return HealthMonitor(
            w.runtimes,
            {"memory": self.driver},
            self.reporter,
            self.prober,
            self.lease_probe,
            w.clock,
            **options,
        )

    def applier(self, on_unreachable: UnreachableHook | None = None) -> HealthEventApplier:
        deps = self.world.deps
        summaries = InMemoryEngineHealthStore(self.world.runtimes)
        return HealthEventApplier(deps, summaries, self.snapshots, on_unreachable=on_unreachable)

    def scheduler(self, **options: Any) -> RestartScheduler:
        options.setdefault("backoff_base_s", 0.001)
        options.setdefault("backoff_cap_s", 0.01)
        options.setdefault("lease_wait_ms", 100)
        return RestartScheduler(
            RestartPolicyService(self.world.lifecycle, self.world.deps, **options)
        )

    def reconciler(self, **options: Any) -> Reconciler:
        w = self.world
        return Reconciler(
            w.runtimes,
            {"memory": self.driver},
            TransientSettler(w.deps),
            self.reporter,
            self.lease_probe,
            w.clock,
            **options,
        )

    def reported(self, runtime_id: str = "rt-1") -> list[HealthEventType]:
        return [e.event_type for e in self.events.events if e.runtime_id == runtime_id]

    async def deliver(self, applier: HealthEventApplier) -> list[HealthEvent]:
        """Hand the events published since the last delivery to `applier`, as
        the consumer would."""
        fresh = self.events.events[self.delivered :]
        self.delivered = len(self.events.events)
        for event in fresh:
            await applier.handle(event)
        return fresh
