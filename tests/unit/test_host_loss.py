"""Host loss on the fakes world: a lost host's runtimes get `host_down` health
events that the applier folds (engine_unreachable, summary host_down, the
restart policy asked); a returning host stops what moved away and keeps what
did not; a busy lease or a silent agent keeps it down; draining restarts
running runtimes and leaves the others."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runplane.domain.drivers import ContainerInfo
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.reactions import is_failure
from runplane.domain.host_calls import HostUnreachable
from runplane.domain.hosts import Host, HostStatus
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.services import driver_call
from runplane.services.hosts.drain import Drainer
from runplane.services.hosts.hooks import HostLossHooks
from runplane.services.hosts.loss import HostLoss
from runplane.services.hosts.returning import HostReturn
from runplane.testing.hosts import InMemoryHostStore
from runplane.workers.host_drain import HostDrainLoop
from runplane.workers.leadership import Leadership
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


@pytest.fixture
def lost() -> Lost:
    return Lost()


def test_host_loss_is_the_monitors_hooks(lost: Lost) -> None:
    hooks: HostLossHooks = lost.loss
    assert repr(hooks) == "HostLoss()"


async def test_a_lost_hosts_running_runtime_becomes_unreachable_with_host_down(lost: Lost) -> None:
    h1 = await lost.host("h1", HostStatus.DOWN)
    await lost.host("h2")
    running = await lost.on("h1", "rt-1", ON_FAILURE)
    paused = await lost.on("h1", "rt-2")
    assert (await lost.world.do(OpKind.PAUSE, "rt-2")).ok
    await lost.on("h1", "rt-3")
    assert (await lost.world.do(OpKind.STOP, "rt-3")).ok
    elsewhere = await lost.on("h2", "rt-4")

    await lost.loss.on_down(h1)

    published = lost.hw.events.events
    assert [(e.runtime_id, e.event_type) for e in published] == [
        ("rt-1", HealthEventType.HOST_DOWN),
        ("rt-2", HealthEventType.HOST_DOWN),
    ]
    assert published[0].container_id == running.container_id
    assert published[0].details["host_id"] == "h1"
    assert is_failure(published[0])  # on-failure restarts it
    await lost.hw.deliver(lost.hw.applier(on_unreachable=lost.on_unreachable))

    after = await lost.world.record("rt-1")
    assert after.status is Status.ENGINE_UNREACHABLE
    assert after.engine_health == "host_down"
    assert [(r.runtime_id, c and c.event_type) for r, c in lost.unreachable] == [
        ("rt-1", HealthEventType.HOST_DOWN)
    ]
    still_paused = await lost.world.record("rt-2")
    assert (still_paused.status, still_paused.engine_health) == (Status.PAUSED, "host_down")
    assert still_paused.container_id == paused.container_id
    assert (await lost.world.record("rt-3")).status is Status.STOPPED
    assert (await lost.world.record("rt-4")).engine_health != "host_down"
    assert (await lost.world.record("rt-4")).container_id == elsewhere.container_id
    unreachable = [e for e in lost.world.log.outbox.events if e.type == "runtime.unreachable"]
    assert len(unreachable) == 1
    assert lost.hw.rows.rows["rt-1"].event_type is HealthEventType.HOST_DOWN


async def test_on_down_twice_is_folded_once(lost: Lost) -> None:
    h1 = await lost.host("h1", HostStatus.DOWN)
    await lost.on("h1", "rt-1", ON_FAILURE)
    await lost.loss.on_down(h1)
    await lost.loss.on_down(h1)
    assert len(lost.hw.events.events) == 2  # at most duplicates
    await lost.hw.deliver(lost.hw.applier(on_unreachable=lost.on_unreachable))
    assert len(lost.unreachable) == 1
    unreachable = [e for e in lost.world.log.outbox.events if e.type == "runtime.unreachable"]
    assert len(unreachable) == 1
    # Folded: the sweep finds nothing left to report.
    assert await lost.loss.sweep_down() == 0


async def test_the_sweep_reports_what_settled_onto_a_down_host_later(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DOWN)
    await lost.host("h2")
    await lost.on("h1", "rt-1")
    await lost.on("h2", "rt-2")
    assert await lost.loss.sweep_down() == 1
    assert [e.runtime_id for e in lost.hw.events.events] == ["rt-1"]


async def test_the_restart_policy_restarts_a_runtime_its_host_lost(lost: Lost) -> None:
    h1 = await lost.host("h1", HostStatus.DOWN)
    before = await lost.on("h1", "rt-1", ON_FAILURE)
    scheduler = lost.hw.scheduler()
    await lost.loss.on_down(h1)
    await lost.hw.deliver(lost.hw.applier(on_unreachable=scheduler.on_unreachable))
    await scheduler.wait_idle()
    after = await lost.world.record("rt-1")
    assert after.status is Status.RUNNING
    assert after.container_id != before.container_id
    entries = await lost.world.entries("rt-1")
    assert entries[-1].op is OpKind.RESTART
    assert entries[-1].op_source is OpSource.HEALTH
    assert "host_down" in entries[-1].reason


async def test_a_returning_host_stops_what_moved_and_keeps_what_stayed(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DOWN)
    moved = await lost.on("h1", "rt-1", ON_FAILURE)
    stayed = await lost.on("h1", "rt-2")
    replaced = await lost.on("h1", "rt-3")
    # rt-1 was restarted on h2; rt-3 got a new container on h1 (its old one runs on).
    now = lost.place(moved, "h2", container_id="m-elsewhere", version=moved.version + 2)
    lost.place(replaced, "h1", container_id="m-new")

    assert await lost.loss.before_up("h1") is True

    assert not lost.world.knows(moved.container_id)
    assert not lost.world.knows(replaced.container_id)
    assert lost.world.is_running(stayed.container_id)
    stops = [c for c in lost.driver.contexts if c[0] == "stop"]
    assert len(stops) == 2
    token, version = lost.driver.contexts[0][1:]
    assert token is not None
    assert version == now.version  # fenced at the record's version
    assert [c[0] for c in lost.driver.contexts] == ["stop", "remove", "stop", "remove"]
    assert lost.world.leases.holder("rt-1") is None  # released
    assert await lost.loss.before_up("h1") is True  # nothing left
    assert len(lost.driver.contexts) == 4


async def test_a_returning_host_stops_containers_of_stopped_or_unknown_runtimes(
    lost: Lost,
) -> None:
    await lost.host("h1", HostStatus.DOWN)
    record = await lost.on("h1", "rt-1")
    lost.place(record, "h1", status=Status.STOPPED)
    stray = lost.driver.start_stray("rt-gone")
    assert await lost.back.clear("h1") is True
    assert not lost.world.knows(record.container_id)
    assert not lost.world.knows(stray)


async def test_an_unplaced_record_is_never_taken_for_moved(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DOWN)
    record = await lost.world.create("rt-1")  # host_id None: written before placement
    assert await lost.back.clear("h1") is True
    assert lost.world.is_running(record.container_id)


async def test_a_busy_lease_keeps_the_host_down_this_tick(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DOWN)
    moved = await lost.on("h1", "rt-1")
    lost.place(moved, "h2", container_id="m-elsewhere")
    assert await lost.world.leases.try_acquire("rt-1", "an-operation", 5_000)
    assert await lost.loss.before_up("h1") is False
    assert lost.world.is_running(moved.container_id)
    await lost.world.leases.release("rt-1", "an-operation")
    assert await lost.loss.before_up("h1") is True
    assert not lost.world.knows(moved.container_id)


async def test_an_agent_that_does_not_answer_keeps_the_host_down(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DOWN)
    moved = await lost.on("h1", "rt-1")
    lost.place(moved, "h2", container_id="m-elsewhere")
    lost.driver.fail_next("list_containers", HostUnreachable("no agent answered"))
    assert await lost.loss.before_up("h1") is False
    lost.driver.fail_next("stop", HostUnreachable("no agent answered"))
    assert await lost.loss.before_up("h1") is False
    assert lost.world.is_running(moved.container_id)
    assert await lost.loss.before_up("h1") is True
    assert not lost.world.knows(moved.container_id)


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


async def test_draining_restarts_running_runtimes_and_leaves_the_rest(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DRAINING)
    await lost.host("h2")
    running = [await lost.on("h1", f"rt-{n}") for n in (1, 2, 3)]
    stopped = await lost.on("h1", "rt-4")
    assert (await lost.world.do(OpKind.STOP, "rt-4")).ok
    await lost.on("h2", "rt-5")
    lifecycle = PlacingRestart(lost, to="h2")
    drainer = Drainer(lifecycle, lost.world.runtimes, lost.hosts, batch=2)  # type: ignore[arg-type]

    first = await drainer.drain_once()
    assert (first.moved, first.more) == (["rt-1", "rt-2"], True)
    second = await drainer.drain_once()
    assert (second.moved, second.more) == (["rt-3"], False)
    assert (await drainer.drain_once()).moved == []

    assert {c[0] for c in lifecycle.calls} == {"rt-1", "rt-2", "rt-3"}
    assert {c[1:] for c in lifecycle.calls} == {(OpSource.RECONCILER, "drain", "system:drain")}
    for before in running:
        after = await lost.world.record(before.runtime_id)
        assert (after.status, after.host_id) == (Status.RUNNING, "h2")
        assert after.container_id != before.container_id
        assert not lost.world.is_running(before.container_id)
    left = await lost.world.record("rt-4")
    assert (left.status, left.host_id) == (Status.STOPPED, "h1")
    assert left.container_id == stopped.container_id
    assert [e.op for e in await lost.world.entries("rt-5")] == [OpKind.START]


async def test_a_drain_restart_that_fails_is_tried_again_next_round(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DRAINING)
    before = await lost.on("h1", "rt-1")
    lifecycle = PlacingRestart(lost, to="h2")
    drainer = Drainer(lifecycle, lost.world.runtimes, lost.hosts)  # type: ignore[arg-type]
    assert await lost.world.leases.try_acquire("rt-1", "an-operation", 5_000)
    failed = await drainer.drain_once()
    assert (failed.moved, failed.failed, failed.more) == ([], ["rt-1"], False)
    still = await lost.world.record("rt-1")
    assert (still.status, still.host_id, still.container_id) == (
        Status.RUNNING,
        "h1",
        before.container_id,
    )
    await lost.world.leases.release("rt-1", "an-operation")
    assert (await drainer.drain_once()).moved == ["rt-1"]
    assert (await lost.world.record("rt-1")).host_id == "h2"


async def test_a_restart_that_leaves_a_runtime_on_its_draining_host_is_not_repeated(
    lost: Lost,
) -> None:
    await lost.host("h1", HostStatus.DRAINING)
    await lost.on("h1", "rt-1")
    lifecycle = PlacingRestart(lost, to=None)
    drainer = Drainer(lifecycle, lost.world.runtimes, lost.hosts)  # type: ignore[arg-type]
    assert (await drainer.drain_once()).stayed == ["rt-1"]
    assert (await drainer.drain_once()).stayed == []
    assert len(lifecycle.calls) == 1


async def test_only_the_leader_sweeps_and_drains(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DRAINING)
    await lost.host("h0", HostStatus.DOWN)
    await lost.on("h1", "rt-1")
    await lost.on("h0", "rt-2")
    lifecycle = PlacingRestart(lost, to="h2")
    w = lost.world

    def loop() -> HostDrainLoop:
        drainer = Drainer(lifecycle, w.runtimes, lost.hosts)  # type: ignore[arg-type]
        leadership = Leadership(w.leases, w.deps.tokens, "runplane:host-drain", ttl_ms=5_000)
        return HostDrainLoop(drainer, lost.loss, leadership)

    leader, other = loop(), loop()
    assert await leader.run_once() is False
    assert await other.run_once() is False
    assert [c[0] for c in lifecycle.calls] == ["rt-1"]
    assert [e.runtime_id for e in lost.hw.events.events] == ["rt-2"]
    await leader.leadership.release()
