"""The collaborators every operation needs, validated once at construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from runplane.ports.drivers import Driver, DriverRouter
from runplane.ports.health import HealthEventPublisher
from runplane.ports.hosts import HostPlacement
from runplane.ports.leases import LeaseStore
from runplane.ports.lifecycle import OperationLog, RuntimeStore
from runplane.ports.system import Clock, TokenGenerator
from runplane.services.admission import Admission
from runplane.services.lifecycle.owners import RuntimeOwners


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a runtime may sit in a transient status before it counts as stuck."""

    start_s: float = 60.0
    stop_s: float = 30.0
    pause_s: float = 30.0

    def for_restart(self) -> float:
        return self.stop_s + self.start_s


@dataclass(frozen=True, slots=True)
class Dependencies:
    runtimes: RuntimeStore
    operations: OperationLog
    leases: LeaseStore
    drivers: Mapping[str, Driver]
    clock: Clock
    tokens: TokenGenerator
    lease_ttl_ms: int = 10_000
    timeouts: Timeouts = field(default_factory=Timeouts)
    event_source: str = "/runplane"
    """CloudEvents `source` of the events this instance writes: /runplane/<instance>."""
    health_events: HealthEventPublisher | None = None
    """Where an operation reports what it found about a container (a stop that
    finds it vanished: `container_disappeared`); best effort, None: not reported."""
    admission: Admission | None = None
    """Team policies and quotas for creates and starts; None: no team is limited
    (only tests and benchmarks; `serve` always has one)."""
    router: DriverRouter | None = None
    """Which host's driver acts for a runtime; None: every call runs on `drivers`
    here (tests, benchmarks: one host, this process)."""
    placement: HostPlacement | None = None
    """Where new and moving runtimes go; None: on `router.local_host_id` (or no
    host recorded, without a router)."""
    owners: RuntimeOwners = field(default_factory=RuntimeOwners)
    """Each runtime's team as read here (it never changes): the screen's answer."""

    def __post_init__(self) -> None:
        if not self.drivers:
            raise ValueError("at least one driver is required")
        if self.lease_ttl_ms < 100:
            raise ValueError("lease_ttl_ms must be at least 100")

    @property
    def local_host_id(self) -> str | None:
        return self.router.local_host_id if self.router is not None else None

    def driver_on(self, host_id: str | None, name: str) -> Driver | None:
        """The `name` driver that acts on `host_id`'s runtimes, seen from here."""
        if self.router is None:
            return self.drivers.get(name)
        return self.router.driver(host_id, name)
