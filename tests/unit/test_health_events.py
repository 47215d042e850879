"""The health events handler on the fakes world: summaries, the two status
changes and their lifecycle events, conflicts, debounced snapshots, and what
is passed over."""

from __future__ import annotations

import asyncio
import json

import pytest

from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.reactions import RuntimeSnapshot
from runplane.domain.operations import OpKind
from runplane.domain.records import StatusChange
from runplane.domain.statuses import Status
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.testing.health import InMemoryEngineHealthStore, InMemorySnapshotPublisher
from runplane.workers.health_consumer import HealthEventHandler
from tests.support.health import HealthWorld

E = HealthEventType


@pytest.fixture
def hw() -> HealthWorld:
    return HealthWorld.build()


def event(hw: HealthWorld, kind: E, container_id: str, **details: object) -> HealthEvent:
    return HealthEvent("rt-1", container_id, kind, hw.world.clock.now(), dict(details))


def entry(fields: dict[str, str], entry_id: str = "1-0") -> StreamEntry:
    return StreamEntry("runtime:health_events", entry_id, fields)


def outbox_types(hw: HealthWorld) -> list[str]:
    return [e.type for e in hw.world.log.outbox.events]


async def test_an_exit_makes_a_running_runtime_unreachable(hw: HealthWorld) -> None:
    record = await hw.world.create()
    handler = hw.applier()
    before = len(hw.world.log.outbox.events)
    cid = record.container_id or ""
    await handler.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=137, signal=9))
    after = await hw.world.record()
    assert after.status is Status.ENGINE_UNREACHABLE
    assert after.engine_health == "exited"
    assert after.status_deadline is None
    new = hw.world.log.outbox.events[before:]
    assert [e.type for e in new] == ["runtime.unreachable", "runtime.state.changed"]
    unreachable = json.loads(new[0].payload)["data"]
    assert unreachable["status_from"] == "running"
    assert unreachable["status_to"] == "engine_unreachable"
    assert unreachable["reason"] == "container_exited"
    assert unreachable["metadata"]["exit_code"] == "137"
    assert unreachable["actor"]["type"] == "system"
    assert [(s.status, s.engine_health) for s in hw.snapshots.snapshots] == [
        ("engine_unreachable", "exited")
    ]
    ops = await hw.world.entries()
    assert [e.op for e in ops] == [OpKind.START]  # not an operation: no log entry


@pytest.mark.parametrize(
    ("kind", "summary"),
    [(E.CONTAINER_OOM, "oom"), (E.CONTAINER_DISAPPEARED, "disappeared")],
)
async def test_oom_and_disappearance_make_it_unreachable_too(
    hw: HealthWorld, kind: E, summary: str
) -> None:
    record = await hw.world.create()
    await hw.applier().handle(event(hw, kind, record.container_id or ""))
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, summary)


async def test_probe_recovered_brings_an_unreachable_runtime_back(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    handler = hw.applier()
    await handler.handle(event(hw, E.CONTAINER_DISAPPEARED, cid))
    await handler.handle(event(hw, E.PROBE_RECOVERED, cid))
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.RUNNING, "healthy")
    assert outbox_types(hw)[-2:] == ["runtime.recovered", "runtime.state.changed"]
    assert [s.status for s in hw.snapshots.snapshots] == ["engine_unreachable", "running"]


async def test_a_probe_failure_changes_only_the_summary(hw: HealthWorld) -> None:
    record = await hw.world.create()
    before = len(hw.world.log.outbox.events)
    await hw.applier().handle(event(hw, E.PROBE_FAILED, record.container_id or ""))
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.RUNNING, "probe_failed")
    assert after.version == record.version  # an observation, not a status write
    assert len(hw.world.log.outbox.events) == before  # no status change, no event


async def test_an_exit_of_a_paused_runtime_falls_back_to_the_summary(hw: HealthWorld) -> None:
    record = await hw.world.create()
    assert (await hw.world.do(OpKind.PAUSE)).ok
    await hw.applier().handle(event(hw, E.CONTAINER_EXITED, record.container_id or ""))
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.PAUSED, "exited")


async def test_a_runtime_in_a_transient_status_is_left_to_its_operation(hw: HealthWorld) -> None:
    record = await hw.world.create()
    stopping = await hw.world.runtimes.compare_and_swap(
        StatusChange("rt-1", Status.RUNNING, record.version, Status.STOPPING, hw.world.clock.now())
    )
    await hw.applier().handle(event(hw, E.CONTAINER_EXITED, record.container_id or ""))
    assert await hw.world.record() == stopping


async def test_an_event_about_a_replaced_container_is_passed_over(hw: HealthWorld) -> None:
    record = await hw.world.create()
    assert (await hw.world.do(OpKind.RESTART)).ok
    restarted = await hw.world.record()
    assert restarted.container_id != record.container_id
    await hw.applier().handle(event(hw, E.CONTAINER_EXITED, record.container_id or ""))
    assert await hw.world.record() == restarted
    assert hw.snapshots.snapshots == []


async def test_unknown_types_runtimes_and_malformed_entries_are_passed_over(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    handler = HealthEventHandler(hw.applier())
    good = {"runtime_id": "rt-1", "container_id": "m-1", "occurred_at_ms": "1700000000000"}
    await handler(entry(good | {"event_type": "container_paused"}))
    await handler(entry(good | {"event_type": "probe_failed", "runtime_id": "nope"}))
    await handler(entry(good | {"event_type": "probe_failed", "occurred_at_ms": "soon"}))
    await handler(entry(good | {"event_type": "probe_failed", "details": "[1]"}))
    await handler(entry({"event_type": "probe_failed"}))
    hostile = good | {"event_type": "probe_failed"}
    await handler(entry(hostile | {"details": '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}"}))
    await handler(entry(hostile | {"details": '{"a": "\\ud800"}'}))
    await handler(entry(hostile | {"container_id": "\udc80"}))
    await handler(entry(hostile | {"occurred_at_ms": "9" * 30}))
    await handler(entry(hostile | {"occurred_at_ms": "9" * 5_000}))
    await handler(StreamEntry("runtime:health_events", "2-0", hostile, undecodable=True))
    assert (await hw.world.record()).engine_health is None
    assert hw.snapshots.snapshots == []


async def test_a_well_formed_entry_is_applied(hw: HealthWorld) -> None:
    record = await hw.world.create()
    fields = event(hw, E.CONTAINER_EXITED, record.container_id or "", exit_code=1).as_fields()
    await HealthEventHandler(hw.applier())(entry(fields))
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE


async def test_an_unreachable_database_asks_for_a_retry(hw: HealthWorld) -> None:
    class DownStore:
        async def get(self, runtime_id: str) -> None:
            raise StoreUnavailable("database unavailable")

    applier = hw.applier()
    applier.runtimes = DownStore()  # type: ignore[assignment]
    handler = HealthEventHandler(applier)
    fields = event(hw, E.PROBE_FAILED, "m-1").as_fields()
    with pytest.raises(RetryLater):
        await handler(entry(fields))


async def test_ten_thousand_repeated_events_publish_snapshots_only_on_changes(
    hw: HealthWorld,
) -> None:
    """Five runtimes, 2,000 events each, in runs of 200 alike: ten changes each."""
    containers = {}
    for n in range(5):
        containers[f"rt-{n}"] = (await hw.world.create(f"rt-{n}")).container_id or ""
    handler = hw.applier()
    for n in range(10_000):
        runtime_id = f"rt-{n % 5}"
        kind = E.PROBE_FAILED if (n // 1_000) % 2 else E.CONTAINER_STARTED
        await handler.handle(
            HealthEvent(runtime_id, containers[runtime_id], kind, hw.world.clock.now())
        )
    assert len(hw.snapshots.snapshots) == 50
    for runtime_id in containers:
        shown = [s.engine_health for s in hw.snapshots.of(runtime_id)]
        assert shown == ["healthy", "probe_failed"] * 5


async def test_after_a_restart_the_first_event_per_runtime_publishes_once(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    first = hw.applier()
    for _ in range(3):
        await first.handle(event(hw, E.CONTAINER_STARTED, cid))
    second = hw.applier()  # a restarted consumer: nothing remembered
    for _ in range(3):
        await second.handle(event(hw, E.CONTAINER_STARTED, cid))
    assert [(s.status, s.engine_health) for s in hw.snapshots.snapshots] == [
        ("running", "healthy"),
        ("running", "healthy"),
    ]


async def test_a_snapshot_not_published_is_published_with_the_next_event(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    flaky = FlakyPublisher(failures=1)
    handler = hw.applier()
    handler.snapshots = flaky
    await handler.handle(event(hw, E.PROBE_FAILED, cid))
    await handler.handle(event(hw, E.PROBE_FAILED, cid))
    await handler.handle(event(hw, E.PROBE_FAILED, cid))
    assert [s.engine_health for s in flaky.snapshots] == ["probe_failed"]


class FlakyPublisher(InMemorySnapshotPublisher):
    """Redis is down for the first `failures` publishes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, snapshot: RuntimeSnapshot) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("redis unavailable")
        await super().publish(snapshot)


async def test_the_unreachable_hook_runs_only_for_the_change(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    seen: list[tuple[str, E]] = []

    async def hook(rec: object, cause: HealthEvent) -> None:
        seen.append((cause.runtime_id, cause.event_type))

    handler = hw.applier(on_unreachable=hook)
    await handler.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=1))
    hw.world.clock.advance(1)
    await handler.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=1))
    assert seen == [("rt-1", E.CONTAINER_EXITED)]


async def test_a_write_waits_for_an_operation_holding_the_lease(hw: HealthWorld) -> None:
    record = await hw.world.create()
    assert await hw.world.leases.try_acquire("rt-1", "an-operation", 60_000)

    async def operation_ends() -> None:
        await asyncio.sleep(0.1)
        await hw.world.leases.release("rt-1", "an-operation")

    ending = asyncio.create_task(operation_ends())
    await hw.applier().handle(event(hw, E.CONTAINER_EXITED, record.container_id or ""))
    await ending
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE
    assert hw.world.leases.holder("rt-1") is None  # the handler gave its lease back


async def test_a_lease_held_too_long_on_a_running_runtime_asks_for_a_retry(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    assert await hw.world.leases.try_acquire("rt-1", "a-slow-operation", 60_000)
    applier = hw.applier()
    applier.writes.lease_wait_ms = 50
    handler = HealthEventHandler(applier)
    fields = event(hw, E.CONTAINER_EXITED, record.container_id or "").as_fields()
    with pytest.raises(RetryLater):
        await handler(entry(fields))
    assert (await hw.world.record()) == record


async def test_repeats_write_nothing(hw: HealthWorld) -> None:
    record = await hw.world.create()
    handler = hw.applier()
    for _ in range(3):
        await handler.handle(event(hw, E.PROBE_FAILED, record.container_id or ""))
    after = await hw.world.record()
    assert (after.version, after.engine_health) == (record.version, "probe_failed")


async def test_a_summary_written_meanwhile_does_not_spoil_an_operations_cas(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()  # what an operation read before the event
    await hw.applier().handle(event(hw, E.PROBE_FAILED, record.container_id or ""))
    stopping = await hw.world.runtimes.compare_and_swap(
        StatusChange("rt-1", Status.RUNNING, record.version, Status.STOPPING, hw.world.clock.now())
    )
    assert stopping.engine_health == "probe_failed"


class DownStore:
    """The database is down: every read fails."""

    async def get(self, runtime_id: str) -> None:
        raise StoreUnavailable("database unavailable")


async def test_a_repeat_that_changes_nothing_is_applied_without_reading(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    applier = hw.applier()
    first = await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    applier.runtimes = DownStore()  # type: ignore[assignment]
    for _ in range(100):
        assert await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid)) == first
    assert await hw.world.record() == first
    assert [s.engine_health for s in hw.snapshots.snapshots] == ["inspect_unhealthy"]


async def test_a_repeat_past_the_trust_window_reads_the_record_again(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    applier = hw.applier()
    await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    summaries = InMemoryEngineHealthStore(hw.world.runtimes)
    at = hw.world.clock.now()
    await summaries.set_engine_health(
        "rt-1", "healthy", status=Status.RUNNING, container_id=cid, at=at
    )
    hw.world.clock.advance(1)
    await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    assert (await hw.world.record()).engine_health == "inspect_unhealthy"


async def test_a_changing_event_after_repeats_is_written(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    applier = hw.applier()
    for _ in range(5):
        await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    await applier.handle(event(hw, E.PROBE_FAILED, cid))
    assert (await hw.world.record()).engine_health == "probe_failed"
    await applier.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=1))
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "exited")
    assert [s.engine_health for s in hw.snapshots.snapshots] == [
        "inspect_unhealthy",
        "probe_failed",
        "exited",
    ]


async def test_a_status_change_is_never_decided_on_memory(hw: HealthWorld) -> None:
    """An exit seen while paused only sets the summary; once resumed, the same
    exit moves the runtime, however recent the record in memory."""
    record = await hw.world.create()
    cid = record.container_id or ""
    applier = hw.applier()
    assert (await hw.world.do(OpKind.PAUSE)).ok
    await applier.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=1))
    assert (await hw.world.record()).status is Status.PAUSED
    assert (await hw.world.do(OpKind.RESUME)).ok
    await applier.handle(event(hw, E.CONTAINER_EXITED, cid, exit_code=1))
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE


async def test_a_runtime_in_a_transient_status_is_not_remembered(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    pausing = await hw.world.runtimes.compare_and_swap(
        StatusChange("rt-1", Status.RUNNING, record.version, Status.PAUSING, hw.world.clock.now())
    )
    applier = hw.applier()
    await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    await hw.world.runtimes.compare_and_swap(
        StatusChange("rt-1", Status.PAUSING, pausing.version, Status.PAUSED, hw.world.clock.now())
    )
    await applier.handle(event(hw, E.INSPECT_UNHEALTHY, cid))
    assert (await hw.world.record()).engine_health == "inspect_unhealthy"
