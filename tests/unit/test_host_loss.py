"""Host loss on the fakes world: a lost host's runtimes get `host_down` health
events that the applier folds (engine_unreachable, summary host_down, the
restart policy asked); a returning host stops what moved away and keeps what
did not; a busy lease or a silent agent keeps it down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.reactions import is_failure
from runplane.domain.host_calls import HostUnreachable
from runplane.domain.hosts import HostStatus
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.statuses import Status
from runplane.services.hosts.hooks import HostLossHooks
from tests.support.host_loss import ON_FAILURE, Lost


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


async def test_a_host_back_up_is_cleared_once_more_for_a_restart_that_raced_its_return(
    lost: Lost,
) -> None:
    h1 = await lost.host("h1", HostStatus.DOWN)
    record = await lost.on("h1", "rt-1", ON_FAILURE)
    await lost.loss.on_down(h1)
    assert await lost.loss.before_up("h1") is True  # still h1's: kept
    lost.hosts._hosts["h1"] = replace(h1, status=HostStatus.UP)
    # A restart that read h1 as down moved rt-1 away after before_up looked,
    # skipping the stop on h1; it still holds the lease at the first recheck.
    assert await lost.world.leases.try_acquire("rt-1", "the-restart", 5_000)
    lost.place(record, "h2", container_id="m-elsewhere")
    await lost.loss.sweep_down()
    assert lost.world.is_running(record.container_id)
    await lost.world.leases.release("rt-1", "the-restart")
    await lost.loss.sweep_down()
    assert not lost.world.knows(record.container_id)
    stops = len(lost.driver.contexts)
    await lost.loss.sweep_down()  # checked: not again
    assert len(lost.driver.contexts) == stops
