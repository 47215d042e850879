"""A whole lifecycle on fakes: the stores, leases and driver are in memory and hold
state, so service tests assert on state rather than on calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runplane.domain.drivers import ContainerState
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import OperationEntry, RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.services.admission import Admission
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from runplane.testing.health import InMemoryHealthEvents
from runplane.testing.leases import InMemoryLeaseStore
from runplane.testing.stores import InMemoryOperationLog, InMemoryRuntimeStore
from runplane.testing.team_policies import InMemoryTeamPolicyStore
from tests.support.clock import FakeClock
from tests.support.tokens import SequentialTokens

SPEC: dict[str, Any] = {"command": ["sleep", "1000"]}


class StaleReads(InMemoryRuntimeStore):
    """A store whose reads, once `stale` is set, answer the record as it was
    before a write another instance made meanwhile (the read raced that write)."""

    stale: RuntimeRecord | None = None

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        if self.stale is not None and self.stale.runtime_id == runtime_id:
            stale, self.stale = self.stale, None
            return stale
        return await super().get(runtime_id)


@dataclass
class World:
    clock: FakeClock
    log: InMemoryOperationLog
    runtimes: InMemoryRuntimeStore
    leases: InMemoryLeaseStore
    driver: InMemoryDriver
    lifecycle: Lifecycle
    deps: Dependencies
    health_events: InMemoryHealthEvents

    @classmethod
    def build(
        cls,
        driver: InMemoryDriver | None = None,
        store: Callable[[InMemoryOperationLog], InMemoryRuntimeStore] = InMemoryRuntimeStore,
        policies: InMemoryTeamPolicyStore | None = None,
    ) -> World:
        """`driver`: an InMemoryDriver (or subclass) named "memory"; a new one by default.
        `store`: builds the runtime store on the log (an InMemoryRuntimeStore subclass).
        `policies`: team policies and quotas are enforced (services/admission.py)."""
        clock = FakeClock()
        log = InMemoryOperationLog()
        runtimes = store(log)
        leases = InMemoryLeaseStore(clock)
        driver = driver or InMemoryDriver()
        health_events = InMemoryHealthEvents()
        deps = Dependencies(
            runtimes=runtimes,
            operations=log,
            leases=leases,
            drivers={"memory": driver},
            clock=clock,
            tokens=SequentialTokens(),
            lease_ttl_ms=5_000,
            health_events=health_events,
            admission=Admission(policies, runtimes, runs_as_root=False)
            if policies is not None
            else None,
        )
        lifecycle = Lifecycle.build(deps, "memory")
        return cls(clock, log, runtimes, leases, driver, lifecycle, deps, health_events)

    async def create(
        self,
        runtime_id: str = "rt-1",
        *,
        start: bool = True,
        team_id: str = "team-a",
        spec: dict[str, Any] | None = None,
    ) -> RuntimeRecord:
        result = await self.lifecycle.create.handle(
            CreateRequest(
                spec=spec or SPEC,
                op_source=OpSource.REST,
                runtime_id=runtime_id,
                team_id=team_id,
                start=start,
            )
        )
        assert result.ok, result
        assert result.record is not None
        return result.record

    async def do(self, op: OpKind, runtime_id: str = "rt-1", **fields: Any) -> OperationResult:
        fields.setdefault("op_source", OpSource.REST)
        if op is OpKind.STOP:
            fields.setdefault("reason", "requested")
        return await self.lifecycle[op].handle(OperationRequest(runtime_id=runtime_id, **fields))

    async def record(self, runtime_id: str = "rt-1") -> RuntimeRecord:
        record = await self.runtimes.get(runtime_id)
        assert record is not None
        return record

    async def entries(self, runtime_id: str = "rt-1") -> list[OperationEntry]:
        return list(reversed(await self.log.list_for_runtime(runtime_id)))

    def state(self, container_id: str | None) -> ContainerState:
        container = self.driver.container(container_id or "")
        return container.info.state if container else ContainerState.MISSING

    def is_running(self, container_id: str | None) -> bool:
        return self.state(container_id) is ContainerState.RUNNING

    def is_paused(self, container_id: str | None) -> bool:
        return self.state(container_id) is ContainerState.PAUSED

    def knows(self, container_id: str | None) -> bool:
        return self.driver.container(container_id or "") is not None

    def spec_of(self, container_id: str | None) -> dict[str, Any]:
        container = self.driver.container(container_id or "")
        assert container is not None
        return container.spec
