"""Draining on the fakes world: running runtimes on a draining host are
restarted (and so moved), the others stay; a failed restart is tried again,
one that leaves the runtime in place is not repeated; only the leader drains."""

from __future__ import annotations

import pytest

from runplane.domain.errors import StoreUnavailable
from runplane.domain.hosts import HostStatus
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.statuses import Status
from runplane.services.hosts.drain import Drainer
from runplane.workers.host_drain import HostDrainLoop
from runplane.workers.leadership import Leadership
from tests.support.host_loss import Lost, PlacingRestart


@pytest.fixture
def lost() -> Lost:
    return Lost()


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


async def test_a_failing_sweep_does_not_stop_the_drain(lost: Lost) -> None:
    await lost.host("h1", HostStatus.DRAINING)
    await lost.host("h0", HostStatus.DOWN)
    await lost.on("h1", "rt-1")
    await lost.on("h0", "rt-2")
    lifecycle = PlacingRestart(lost, to="h2")
    w = lost.world

    async def redis_away(event: object) -> None:
        raise StoreUnavailable("redis is away")

    lost.hw.events.publish = redis_away  # type: ignore[method-assign]
    drainer = Drainer(lifecycle, w.runtimes, lost.hosts)  # type: ignore[arg-type]
    leadership = Leadership(w.leases, w.deps.tokens, "runplane:host-drain", ttl_ms=5_000)
    await HostDrainLoop(drainer, lost.loss, leadership).run_once()
    assert [c[0] for c in lifecycle.calls] == ["rt-1"]
    assert (await w.record("rt-2")).status is Status.RUNNING  # reported on a later round
    await leadership.release()
