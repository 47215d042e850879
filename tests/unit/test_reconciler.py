"""The reconciler on the fakes world: stuck transient statuses settled from what
the driver sees (with an inferred operation-log entry), ends the monitor did
not report, orphans, lost restarts, one leader."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import ErrorCode
from runplane.domain.health.events import HealthEventType
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.settlements import SETTLEMENTS, Seen
from runplane.domain.statuses import TRANSIENT, TRANSITIONS, Status
from runplane.workers.leadership import Leadership
from tests.support.health import HealthWorld
from tests.support.streams import wait_until
from tests.support.tokens import SequentialTokens

E = HealthEventType


@pytest.fixture
def hw() -> HealthWorld:
    return HealthWorld.build()


def test_every_transient_status_settles_for_every_sight_along_a_declared_transition() -> None:
    for status in TRANSIENT:
        for seen in Seen:
            settlement = SETTLEMENTS[(status, seen)]
            assert settlement.to in TRANSITIONS[status], (status, seen)


async def interrupt(hw: HealthWorld, to: Status, **fields: Any) -> RuntimeRecord:
    """Leave the runtime in `to` as a crashed operation would: the first CAS
    made, the second never; its deadline already past."""
    record = await hw.world.record()
    now = hw.world.clock.now()
    change = StatusChange(
        "rt-1", record.status, record.version, to, now, status_deadline=now + timedelta(seconds=30)
    )
    change = replace(change, **fields)
    stuck = await hw.world.runtimes.compare_and_swap(change)
    hw.world.clock.advance(31)
    return stuck


async def test_a_stop_killed_between_its_writes_is_settled_stopped(hw: HealthWorld) -> None:
    record = await hw.world.create()
    await interrupt(hw, Status.STOPPING)
    await hw.driver.stop(record.container_id or "")  # the driver call had been made
    found = await hw.reconciler().reconcile_once()
    assert found["settled_stopping"] == 1
    after = await hw.world.record()
    assert after.status is Status.STOPPED
    assert after.status_deadline is None
    assert after.stopped_at == hw.world.clock.now()
    entry = (await hw.world.entries())[-1]
    assert (entry.op, entry.op_source, entry.outcome) == (
        OpKind.STOP,
        OpSource.RECONCILER,
        Outcome.SUCCESS,
    )
    assert (entry.status_from, entry.status_to) == (Status.STOPPING, Status.STOPPED)
    assert entry.details["inferred"] is True
    assert entry.details["seen"] == "gone"
    assert "interrupted" in entry.reason
    assert entry.actor == "system:reconciler"
    stop_event = json.loads(hw.world.log.outbox.events[-2].payload)
    assert stop_event["type"] == "runtime.stop"
    assert stop_event["data"]["metadata"] == {"inferred": "true"}


async def test_a_stop_killed_before_its_driver_call_is_finished(hw: HealthWorld) -> None:
    record = await hw.world.create()
    await interrupt(hw, Status.STOPPING)
    await hw.reconciler().reconcile_once()
    assert (await hw.world.record()).status is Status.STOPPED
    assert not hw.world.is_running(record.container_id)
    assert (await hw.world.entries())[-1].details["finished_by_reconciler"] == "stop"


async def test_a_start_whose_container_runs_is_settled_running(hw: HealthWorld) -> None:
    await hw.world.create(start=False)
    await interrupt(hw, Status.STARTING)
    started = await hw.driver.start("rt-1", {"command": ["serve"]})  # the record never knew
    await hw.reconciler().reconcile_once()
    after = await hw.world.record()
    assert after.status is Status.RUNNING
    assert after.container_id == started.container_id
    assert after.started_at == hw.world.clock.now()
    assert (await hw.world.entries())[-1].outcome is Outcome.SUCCESS


async def test_a_start_with_nothing_running_is_settled_error(hw: HealthWorld) -> None:
    await hw.world.create(start=False)
    await interrupt(hw, Status.STARTING)
    await hw.reconciler().reconcile_once()
    assert (await hw.world.record()).status is Status.ERROR
    entry = (await hw.world.entries())[-1]
    assert (entry.op, entry.outcome, entry.error_code) == (
        OpKind.START,
        Outcome.FAILURE,
        ErrorCode.INTERNAL,
    )


async def test_a_removal_is_finished(hw: HealthWorld) -> None:
    record = await hw.world.create()
    assert (await hw.world.do(OpKind.STOP)).ok
    await interrupt(hw, Status.REMOVING)
    await hw.reconciler().reconcile_once()
    after = await hw.world.record()
    assert after.status is Status.REMOVED
    assert not hw.world.knows(record.container_id)


async def test_a_transient_runtime_under_a_lease_is_left_to_its_operation(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    stuck = await interrupt(hw, Status.STOPPING)
    assert await hw.world.leases.try_acquire("rt-1", "a-live-stop", 60_000)
    assert not await hw.reconciler().reconcile_once()
    assert await hw.world.record() == stuck


async def test_the_lease_gone_not_the_deadline_says_an_operation_was_interrupted(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    await interrupt(hw, Status.STOPPING)
    hw.world.clock.set(hw.world.clock.now() - timedelta(seconds=29))  # 1 s in, lease free
    found = await hw.reconciler().reconcile_once()
    assert found["settled_stopping"] == 1
    assert (await hw.world.record()).status is Status.STOPPED


async def test_a_status_entered_a_moment_ago_is_not_raced_for_its_lease(
    hw: HealthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its operation may just have ended: a lease taken now would answer its
    # caller's next call `conflict`. A dead holder's lease lasts longer anyway.
    await hw.world.create()
    stuck = await interrupt(hw, Status.STOPPING)
    assert stuck.last_op_at is not None
    hw.world.clock.set(stuck.last_op_at + timedelta(seconds=4))
    taken: list[str] = []
    acquire = hw.world.leases.try_acquire

    async def counted(runtime_id: str, token: str, ttl_ms: int) -> bool:
        taken.append(runtime_id)
        return await acquire(runtime_id, token, ttl_ms)

    monkeypatch.setattr(hw.world.leases, "try_acquire", counted)
    reconciler = hw.reconciler(settle_after_s=5)
    assert not await reconciler.settle_interrupted()
    assert taken == []
    assert await hw.world.record() == stuck
    hw.world.clock.advance(1)
    assert (await reconciler.settle_interrupted())["settled_stopping"] == 1
    assert taken == ["rt-1"]


async def test_a_running_runtime_whose_container_vanished_is_reported(hw: HealthWorld) -> None:
    record = await hw.world.create()
    hw.driver.vanish(record.container_id or "")
    reconciler = hw.reconciler()
    found = await reconciler.reconcile_once()
    assert found["container_disappeared"] == 1
    await reconciler.reconcile_once()
    await hw.monitor().tick()  # shares the reporter: not reported twice
    assert hw.reported() == [E.CONTAINER_DISAPPEARED]


async def test_orphans_are_reported_and_stopped_only_when_asked(hw: HealthWorld) -> None:
    await hw.world.create()
    stray = hw.driver.start_stray("rt-1")
    ghost = hw.driver.start_stray("never-created")
    found = await hw.reconciler().reconcile_once()
    assert found["orphan"] == 2
    assert hw.world.is_running(stray)
    assert hw.world.is_running(ghost)
    found = await hw.reconciler(stop_orphans=True).reconcile_once()
    assert found["orphan_stopped"] == 2
    assert not hw.world.is_running(stray)
    assert not hw.world.is_running(ghost)
    assert hw.world.is_running((await hw.world.record()).container_id)


async def test_containers_of_the_running_records_just_listed_are_not_read_again(
    hw: HealthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        await hw.world.create(runtime_id=f"rt-{index}")
    stray = hw.driver.start_stray("never-created")
    read: list[str] = []
    get = hw.world.runtimes.get

    async def counted_get(runtime_id: str) -> RuntimeRecord | None:
        read.append(runtime_id)
        return await get(runtime_id)

    monkeypatch.setattr(hw.world.runtimes, "get", counted_get)
    found = await hw.reconciler().reconcile_once()
    assert found["orphan"] == 1  # the stray, still found
    assert read == ["never-created"]  # one read: the container no listed record names
    assert hw.world.is_running(stray)


async def test_running_containers_the_listing_shows_live_are_not_inspected_again(
    hw: HealthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        await hw.world.create(runtime_id=f"rt-{index}")
    ended = (await hw.world.record("rt-1")).container_id or ""
    await hw.driver.stop(ended)  # ended behind runplane's back
    inspected: list[str] = []
    inspect = hw.driver.inspect

    async def counted_inspect(container_id: str) -> ContainerInfo:
        inspected.append(container_id)
        return await inspect(container_id)

    monkeypatch.setattr(hw.driver, "inspect", counted_inspect)
    listed = hw.driver.list_containers
    listings: list[int] = []

    async def counted_list() -> list[ContainerInfo]:
        listings.append(1)
        return await listed()

    monkeypatch.setattr(hw.driver, "list_containers", counted_list)
    found = await hw.reconciler().reconcile_once()
    assert found["container_exited"] == 1  # the ended one, still reported
    assert hw.reported("rt-1") == [E.CONTAINER_EXITED]
    assert inspected == [ended]  # the live ones were read from the one listing
    assert len(listings) == 1


async def test_a_container_of_a_runtime_in_flight_is_no_orphan(hw: HealthWorld) -> None:
    await hw.world.create(start=False)
    await interrupt(hw, Status.STARTING)
    hw.world.clock.set(hw.world.clock.now() - timedelta(seconds=5))  # not stuck yet
    await hw.driver.start("rt-1", {"command": ["serve"]})
    assert (await hw.reconciler().reconcile_once())["orphan"] == 0


async def test_a_restart_lost_with_its_process_is_asked_for_again(hw: HealthWorld) -> None:
    record = await hw.world.create(spec={"command": ["x"], "restart_policy": {"mode": "always"}})
    hw.driver.exit(record.container_id or "", 1)
    await hw.monitor().tick()
    await hw.deliver(hw.applier())  # no scheduler: the restart is "lost"
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE
    scheduler = hw.scheduler()
    found = await hw.reconciler(restarts=scheduler).reconcile_once()
    assert found["restart_requeued"] == 1
    await scheduler.wait_idle()
    assert (await hw.world.record()).status is Status.RUNNING


async def test_only_the_leader_reconciles(hw: HealthWorld) -> None:
    record = await hw.world.create()
    hw.driver.vanish(record.container_id or "")
    tokens = SequentialTokens("r")
    lead = Leadership(hw.world.leases, tokens, "runplane:reconciler")
    other = Leadership(hw.world.leases, tokens, "runplane:reconciler")
    assert await hw.reconciler(leadership=lead).reconcile_once()
    assert not await hw.reconciler(leadership=other).reconcile_once()
    await lead.release()


async def test_interrupted_runtimes_are_settled_between_rounds_on_every_instance(
    hw: HealthWorld,
) -> None:
    """Another instance leads the reconciler, so this one's full rounds do
    nothing; its interrupted-settling pass (every 10 ms here) still settles a
    runtime whose lease ended, without leading and without waiting for a round."""
    await hw.world.create()
    await interrupt(hw, Status.STOPPING)
    tokens = SequentialTokens()
    leader = Leadership(hw.world.leases, tokens, "runplane:reconciler", ttl_ms=60_000)
    assert await leader.hold()
    follower = Leadership(hw.world.leases, tokens, "runplane:reconciler", ttl_ms=60_000)
    reconciler = hw.reconciler(
        leadership=follower, interval_s=1800, jitter_s=0, settle_interval_s=0.01
    )
    assert not await reconciler.reconcile_once()  # not leading: a round does nothing
    task = asyncio.create_task(reconciler.run())
    try:
        await wait_until(lambda: _stopped(hw))
    finally:
        reconciler.request_stop()
        await task
        await leader.release()
    entry = (await hw.world.entries())[-1]
    assert (entry.op_source, entry.status_from, entry.status_to) == (
        OpSource.RECONCILER,
        Status.STOPPING,
        Status.STOPPED,
    )


async def _stopped(hw: HealthWorld) -> bool:
    return (await hw.world.record()).status is Status.STOPPED
