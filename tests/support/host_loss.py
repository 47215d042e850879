"""Host loss on the fakes world: hosts in memory, runtimes placed on them,
the host-loss hooks wired to the health world (tests/unit/test_host_loss.py,
test_host_drain.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runplane.domain.drivers import ContainerInfo
from runplane.domain.health.events import HealthEvent
from runplane.domain.hosts import Host, HostStatus
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord
from runplane.services import driver_call
from runplane.services.hosts.loss import HostLoss
from runplane.services.hosts.returning import HostReturn
from runplane.testing.hosts import InMemoryHostStore
from tests.support.health import HealthWorld, MarkingDriver
from tests.support.world import World

ON_FAILURE = {"command": ["serve"], "restart_policy": {"mode": "on-failure"}}


class FencedDriver(MarkingDriver):
    """Remembers the driver-call context each stop and remove was made in."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.contexts: list[tuple[str, str | None, int | None]] = []

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        self._note("stop")
        return await super().stop(container_id, timeout_s=timeout_s)

    async def remove(self, container_id: str) -> None:
        self._note("remove")
        await super().remove(container_id)

    def _note(self, op: str) -> None:
        call = driver_call.current()
        self.contexts.append((op, call and call.lease_token, call and call.record_version))


class Lost:
    def __init__(self) -> None:
        self.driver = FencedDriver()
        self.hw = HealthWorld(World.build(self.driver), self.driver)
        self.world = self.hw.world
        self.hosts = InMemoryHostStore()
        self.back = HostReturn(self.world.deps, self.hosts)
        self.loss = HostLoss(self.world.runtimes, self.hosts, self.hw.reporter, self.back)
        self.unreachable: list[tuple[RuntimeRecord, HealthEvent | None]] = []

    async def host(self, host_id: str, status: HostStatus = HostStatus.UP) -> Host:
        now = self.world.clock.now()
        admin = HostStatus.UP if status is HostStatus.DOWN else status
        host = Host(host_id, "", status, admin, 1, now, now, drivers=("memory",))
        await self.hosts.register(host)
        return host

    async def on(
        self, host_id: str, runtime_id: str, spec: dict[str, Any] | None = None
    ) -> RuntimeRecord:
        """A running runtime placed on `host_id`."""
        record = await self.world.create(runtime_id, spec=spec)
        return self.place(record, host_id)

    def place(self, record: RuntimeRecord, host_id: str, **more: Any) -> RuntimeRecord:
        # What the lead's start/restart write with their CAS; set directly here.
        moved = replace(record, host_id=host_id, **more)
        self.world.runtimes._records[record.runtime_id] = moved
        return moved

    async def on_unreachable(self, record: RuntimeRecord, cause: HealthEvent | None) -> bool:
        self.unreachable.append((record, cause))
        return True


class PlacingRestart:
    """The lifecycle, with a restart that re-places a runtime off a draining
    host as the lead's restart does (here: onto `to`, set on the fake store)."""

    def __init__(self, lost: Lost, to: str | None) -> None:
        self.lost = lost
        self.to = to
        self.calls: list[tuple[str, OpSource, str, str]] = []

    def __getitem__(self, op: OpKind) -> PlacingRestart:
        assert op is OpKind.RESTART
        return self

    async def handle(self, request: Any) -> Any:
        self.calls.append((request.runtime_id, request.op_source, request.reason, request.actor))
        result = await self.lost.world.lifecycle[OpKind.RESTART].handle(request)
        if result.ok and self.to is not None:
            record = self.lost.place(result.record, self.to)
            result = replace(result, record=record)
        return result
