"""The timeout and idle rules' decisions on a real SQLite store, through the
real lifecycle (an in-memory driver, a hand-moved clock): what fires, when,
with which reason, what is left for the next round and what is spent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_settings import SqlRuntimeSettings
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator
from runplane.domain.connection_calls import PortsOf
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.runtime_settings import IdleAction, IdleRule, OnTimeout, RuntimeSettings
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_ops.idle import ConnectionProbe, IdleWatcher
from runplane.services.runtime_ops.timeouts import TimeoutFirer
from runplane.testing.driver import InMemoryDriver
from runplane.testing.leases import InMemoryLeaseStore
from tests.support.clock import FakeClock


class Counts:
    """A ConnectionCounter whose answers the test sets, per container."""

    def __init__(self) -> None:
        self.by_container: dict[str, int | None] = {}

    async def count(self, driver: str, items: Sequence[PortsOf]) -> list[int | None]:
        return [self.by_container.get(cid, 0) for cid, _ in items]


@dataclass
class World:
    clock: FakeClock
    lifecycle: Lifecycle
    settings: SqlRuntimeSettings
    runtimes: SqlRuntimeStore
    operations: SqlOperationLog
    leases: InMemoryLeaseStore
    counts: Counts
    seconds: list[float]

    def monotonic(self) -> float:
        return self.seconds[0]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.seconds[0] += seconds

    async def create(self, runtime_id: str, settings: RuntimeSettings, **spec: object) -> str:
        request = CreateRequest(
            spec={"command": ["serve"], **spec},
            op_source=OpSource.REST,
            runtime_id=runtime_id,
            settings=settings,
        )
        created = await self.lifecycle.create.handle(request)
        assert created.record is not None, created.error_message
        assert created.record.status is Status.RUNNING
        return created.record.container_id or ""

    async def status(self, runtime_id: str) -> Status:
        record = await self.runtimes.get(runtime_id)
        assert record is not None
        return record.status

    async def ops(self, runtime_id: str) -> list[tuple[str, str, str]]:
        entries = await self.operations.list_for_runtime(runtime_id)
        return [(str(e.op), e.reason, e.actor) for e in entries]


@pytest_asyncio.fixture(loop_scope="session")
async def world(tmp_path: Path) -> AsyncIterator[World]:
    database = SqlDatabase.from_url(f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}")
    await upgrade_database(database)
    clock = FakeClock()
    leases = InMemoryLeaseStore(clock)
    driver = InMemoryDriver()
    deps = Dependencies(
        runtimes=SqlRuntimeStore(database),
        operations=SqlOperationLog(database),
        leases=leases,
        drivers={driver.name: driver},
        clock=clock,
        tokens=SecretTokenGenerator(),
    )
    yield World(
        clock,
        Lifecycle.build(deps, driver.name),
        SqlRuntimeSettings(database),
        deps.runtimes,  # type: ignore[arg-type]
        deps.operations,  # type: ignore[arg-type]
        leases,
        Counts(),
        [1000.0],
    )
    await database.dispose()


def firer(world: World) -> TimeoutFirer:
    return TimeoutFirer(world.lifecycle, world.settings, world.clock)


def watcher(world: World) -> IdleWatcher:
    probe = ConnectionProbe(world.counts, None)
    return IdleWatcher(
        world.lifecycle, world.settings, world.clock, probe, monotonic=world.monotonic
    )


async def test_a_deadline_fires_once_as_a_stop_with_ttl_expired(world: World) -> None:
    await world.create("rt-1", RuntimeSettings(timeout_s=60))
    world.advance(59)
    assert await firer(world).fire_due() == 0
    assert await world.status("rt-1") is Status.RUNNING

    world.advance(2)
    assert await firer(world).fire_due() == 1

    assert await world.status("rt-1") is Status.STOPPED
    assert (await world.ops("rt-1"))[0] == ("stop", "ttl_expired", "system:timeout")
    record = await world.runtimes.get("rt-1")
    assert record is not None
    assert record.timeout_at is None
    assert await firer(world).fire_due() == 0


async def test_a_deadline_the_action_does_not_apply_to_is_spent_without_an_operation(
    world: World,
) -> None:
    await world.create("rt-1", RuntimeSettings(timeout_s=60, on_timeout=OnTimeout.PAUSE))
    request = OperationRequest("rt-1", OpSource.REST, reason="requested")
    assert (await world.lifecycle[OpKind.STOP].handle(request)).ok
    before = await world.ops("rt-1")

    world.advance(61)
    assert await firer(world).fire_due() == 1

    assert await world.ops("rt-1") == before
    assert await world.status("rt-1") is Status.STOPPED
    assert await world.settings.due_timeouts(world.clock.now()) == []


async def test_a_runtime_whose_lease_is_held_is_fired_on_a_later_round(world: World) -> None:
    await world.create("rt-1", RuntimeSettings(timeout_s=10, on_timeout=OnTimeout.REMOVE))
    assert await world.leases.try_acquire("rt-1", "someone-else", 60_000)
    world.advance(11)

    assert await firer(world).fire_due() == 0  # conflict: kept for the next round
    assert await world.status("rt-1") is Status.RUNNING
    await world.leases.release("rt-1", "someone-else")
    assert await firer(world).fire_due() == 1

    assert await world.status("rt-1") is Status.REMOVED
    assert (await world.ops("rt-1"))[0] == ("remove", "ttl_expired", "system:timeout")


async def test_an_idle_runtime_is_paused_and_a_busy_or_unknown_one_is_not(world: World) -> None:
    rule = RuntimeSettings(idle=IdleRule(30, IdleAction.PAUSE))
    busy = await world.create("busy", rule, port=8080)
    await world.create("quiet", rule, port=8081)
    unknown = await world.create("unknown", rule, port=8082)
    world.counts.by_container = {busy: 2, unknown: None}
    watch = watcher(world)

    assert await watch.check_once() == []
    world.advance(31)
    assert await watch.check_once() == ["quiet"]

    assert await world.status("quiet") is Status.PAUSED
    assert (await world.ops("quiet"))[0] == ("pause", "idle", "system:idle")
    assert await world.status("busy") is Status.RUNNING
    assert await world.status("unknown") is Status.RUNNING
    record = await world.runtimes.get("busy")
    assert record is not None
    assert record.active_at == world.clock.now()


async def test_activity_starts_the_idle_clock_again(world: World) -> None:
    await world.create("rt-1", RuntimeSettings(idle=IdleRule(30)))  # no port: activity only
    watch = watcher(world)
    world.advance(20)
    await world.settings.mark_active(["rt-1"], world.clock.now())
    world.advance(20)
    assert await watch.check_once() == []  # 20 s since the activity

    world.advance(11)
    assert await watch.check_once() == ["rt-1"]
    assert (await world.ops("rt-1"))[0] == ("stop", "idle", "system:idle")


async def test_a_resumed_runtime_is_not_paused_again_at_once(world: World) -> None:
    await world.create("rt-1", RuntimeSettings(idle=IdleRule(30, IdleAction.PAUSE)))
    watch = watcher(world)
    world.advance(31)
    assert await watch.check_once() == ["rt-1"]
    assert (await world.lifecycle[OpKind.RESUME].handle(OperationRequest("rt-1", OpSource.REST))).ok

    world.advance(29)
    assert await watch.check_once() == []  # its clock started at the resume
    assert await world.status("rt-1") is Status.RUNNING


async def test_a_runtime_is_asked_about_every_quarter_of_its_rule(world: World) -> None:
    await world.create("rt-1", RuntimeSettings(idle=IdleRule(40)), port=8080)
    asked: list[float] = []
    counts = world.counts

    class Recording(Counts):
        async def count(self, driver: str, items: Sequence[PortsOf]) -> list[int | None]:
            asked.append(world.monotonic())
            return await counts.count(driver, items)

    watch = IdleWatcher(
        world.lifecycle,
        world.settings,
        world.clock,
        ConnectionProbe(Recording(), None),
        monotonic=world.monotonic,
    )
    for _ in range(8):
        await watch.check_once()
        world.advance(5)
    assert asked == [1000.0, 1010.0, 1020.0, 1030.0]
