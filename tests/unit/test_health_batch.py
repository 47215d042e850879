"""A batch of health events applied at once (services/health/batch.py) on the
fakes world: repeats folded to the final state with one read and one write,
order kept per runtime, a status change amid repeats, and what a batch that
cannot finish reports unapplied."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import pytest

from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.ports.health import SummaryWrite
from runplane.services.health.applier import HealthEventApplier
from runplane.testing.health import InMemoryEngineHealthStore
from tests.support.health import HealthWorld

E = HealthEventType


class CountingSummaries(InMemoryEngineHealthStore):
    """The fake store, counting the batch reads and the summary writes."""

    def __init__(self, hw: HealthWorld) -> None:
        super().__init__(hw.world.runtimes)
        self.reads: list[list[str]] = []
        self.writes: list[list[SummaryWrite]] = []

    async def records(self, runtime_ids: Collection[str]) -> dict[str, RuntimeRecord]:
        self.reads.append(sorted(runtime_ids))
        return await super().records(runtime_ids)

    async def set_engine_healths(
        self, writes: Sequence[SummaryWrite], *, at: datetime
    ) -> dict[str, RuntimeRecord]:
        self.writes.append(list(writes))
        return await super().set_engine_healths(writes, at=at)


@pytest.fixture
def hw() -> HealthWorld:
    return HealthWorld.build()


def applier_of(
    hw: HealthWorld, summaries: CountingSummaries, **options: object
) -> HealthEventApplier:
    return HealthEventApplier(hw.world.deps, summaries, hw.snapshots, **options)  # type: ignore[arg-type]


def ev(hw: HealthWorld, runtime_id: str, kind: E, container_id: str) -> HealthEvent:
    return HealthEvent(runtime_id, container_id, kind, hw.world.clock.now())


def shown(hw: HealthWorld, runtime_id: str = "rt-1") -> list[tuple[str, str]]:
    return [(s.status, s.engine_health) for s in hw.snapshots.of(runtime_id)]


async def test_repeats_fold_to_the_last_summary_with_one_read_and_one_write(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    summaries = CountingSummaries(hw)
    applier = applier_of(hw, summaries)
    batch = [ev(hw, "rt-1", E.PROBE_FAILED, cid)] * 50 + [
        ev(hw, "rt-1", E.INSPECT_UNHEALTHY, cid)
    ] * 50
    assert await applier.apply_batch(batch) == [True] * 100
    after = await hw.world.record()
    assert (after.status, after.engine_health, after.version) == (
        Status.RUNNING,
        "inspect_unhealthy",
        record.version,  # a summary is no version bump
    )
    assert summaries.reads == [["rt-1"]]
    assert [[w.summary for w in ws] for ws in summaries.writes] == [["inspect_unhealthy"]]
    assert shown(hw) == [("running", "inspect_unhealthy")]  # the folded-away one not shown


async def test_a_batch_that_changes_nothing_writes_and_publishes_nothing(hw: HealthWorld) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    summaries = CountingSummaries(hw)
    applier = applier_of(hw, summaries)
    await applier.apply_batch([ev(hw, "rt-1", E.PROBE_FAILED, cid)])
    written, published = len(summaries.writes), len(hw.snapshots.snapshots)
    # probe_recovered may change a status: read again, but nothing to write.
    repeats = [ev(hw, "rt-1", E.PROBE_FAILED, cid), ev(hw, "rt-1", E.PROBE_RECOVERED, cid)] * 5
    repeats.append(ev(hw, "rt-1", E.PROBE_FAILED, cid))
    assert await applier.apply_batch(repeats) == [True] * len(repeats)
    assert [ws for ws in summaries.writes[written:] if ws] == []
    assert len(hw.snapshots.snapshots) == published
    assert (await hw.world.record()).engine_health == "probe_failed"


async def test_each_runtimes_events_apply_in_stream_order(hw: HealthWorld) -> None:
    one = await hw.world.create("rt-1")
    two = await hw.world.create("rt-2")
    c1, c2 = one.container_id or "", two.container_id or ""
    applier = applier_of(hw, CountingSummaries(hw))
    batch = [
        ev(hw, "rt-1", E.CONTAINER_EXITED, c1),
        ev(hw, "rt-2", E.PROBE_FAILED, c2),
        ev(hw, "rt-1", E.PROBE_RECOVERED, c1),
        ev(hw, "rt-2", E.CONTAINER_EXITED, c2),
        ev(hw, "rt-1", E.PROBE_FAILED, c1),
    ]
    assert await applier.apply_batch(batch) == [True] * 5
    first, second = await hw.world.record("rt-1"), await hw.world.record("rt-2")
    assert (first.status, first.engine_health, first.version) == (
        Status.RUNNING,
        "probe_failed",
        one.version + 2,
    )
    assert (second.status, second.engine_health) == (Status.ENGINE_UNREACHABLE, "exited")
    mine = [e.type for e in hw.world.log.outbox.events if e.runtime_id == "rt-1"]
    assert mine[-4:] == [
        "runtime.unreachable",
        "runtime.state.changed",
        "runtime.recovered",
        "runtime.state.changed",
    ]
    assert shown(hw, "rt-1") == [
        ("engine_unreachable", "exited"),
        ("running", "healthy"),
        ("running", "probe_failed"),
    ]
    assert shown(hw, "rt-2") == [("engine_unreachable", "exited")]


async def test_a_status_change_amid_repeats_is_made_once_and_the_hook_called(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""
    seen: list[tuple[str, str]] = []

    async def hook(rec: RuntimeRecord, cause: HealthEvent) -> None:
        seen.append((str(rec.status), str(cause.event_type)))

    applier = applier_of(hw, CountingSummaries(hw), on_unreachable=hook)
    batch = (
        [ev(hw, "rt-1", E.PROBE_FAILED, cid)] * 3
        + [ev(hw, "rt-1", E.CONTAINER_EXITED, cid)] * 4
        + [ev(hw, "rt-1", E.PROBE_FAILED, cid)] * 2
    )
    assert await applier.apply_batch(batch) == [True] * 9
    after = await hw.world.record()
    assert (after.status, after.engine_health, after.version) == (
        Status.ENGINE_UNREACHABLE,
        "probe_failed",
        record.version + 1,
    )
    assert seen == [("engine_unreachable", "container_exited")]
    types = [e.type for e in hw.world.log.outbox.events]
    assert types.count("runtime.unreachable") == 1
    assert shown(hw) == [("engine_unreachable", "exited"), ("engine_unreachable", "probe_failed")]


async def test_a_status_change_that_cannot_be_made_leaves_its_runtime_unapplied(
    hw: HealthWorld,
) -> None:
    one = await hw.world.create("rt-1")
    two = await hw.world.create("rt-2")
    c1, c2 = one.container_id or "", two.container_id or ""
    assert await hw.world.leases.try_acquire("rt-1", "a-slow-operation", 60_000)
    applier = applier_of(hw, CountingSummaries(hw), lease_wait_ms=20)
    batch = [
        ev(hw, "rt-1", E.PROBE_FAILED, c1),  # its summary would be written after the batch
        ev(hw, "rt-2", E.PROBE_FAILED, c2),
        ev(hw, "rt-1", E.CONTAINER_EXITED, c1),  # the lease is held: RuntimeBusy
        ev(hw, "rt-1", E.PROBE_FAILED, c1),
        ev(hw, "rt-2", E.INSPECT_UNHEALTHY, c2),
    ]
    assert await applier.apply_batch(batch) == [False, True, False, False, True]
    assert await hw.world.record("rt-1") == one  # nothing of rt-1's written
    assert (await hw.world.record("rt-2")).engine_health == "inspect_unhealthy"
    await hw.world.leases.release("rt-1", "a-slow-operation")
    # What the consumer then does with the unapplied ones: one by one, in order.
    for index in (0, 2, 3):
        await applier.handle(batch[index])
    after = await hw.world.record("rt-1")
    assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "probe_failed")


async def test_a_summary_whose_record_changed_behind_the_batch_is_left_unapplied(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    cid = record.container_id or ""

    class Moving(CountingSummaries):
        async def set_engine_healths(
            self, writes: Sequence[SummaryWrite], *, at: datetime
        ) -> dict[str, RuntimeRecord]:
            stopping = StatusChange(
                "rt-1", Status.RUNNING, record.version, Status.STOPPING, hw.world.clock.now()
            )
            await hw.world.runtimes.compare_and_swap(stopping)  # an operation, meanwhile
            return await super().set_engine_healths(writes, at=at)

    applier = applier_of(hw, Moving(hw))
    assert await applier.apply_batch([ev(hw, "rt-1", E.PROBE_FAILED, cid)] * 3) == [False] * 3
    after = await hw.world.record()
    assert (after.status, after.engine_health) == (Status.STOPPING, record.engine_health)
    assert hw.snapshots.snapshots == []


async def test_unknown_runtimes_and_replaced_containers_are_passed_over(hw: HealthWorld) -> None:
    record = await hw.world.create()
    applier = applier_of(hw, CountingSummaries(hw))
    batch = [
        ev(hw, "rt-9", E.CONTAINER_EXITED, "c-9"),
        ev(hw, "rt-1", E.CONTAINER_EXITED, "an-old-container"),
    ]
    assert await applier.apply_batch(batch) == [True, True]
    assert await hw.world.record() == record
    assert hw.snapshots.snapshots == []


async def test_a_new_containers_start_is_read_about_though_the_old_one_is_remembered(
    hw: HealthWorld,
) -> None:
    record = await hw.world.create()
    summaries = CountingSummaries(hw)
    applier = applier_of(hw, summaries)
    await applier.apply_batch([ev(hw, "rt-1", E.PROBE_FAILED, record.container_id or "")])
    # A restart within the second the record is remembered for (the clock stands still).
    now = hw.world.clock.now()
    restarting = StatusChange("rt-1", Status.RUNNING, record.version, Status.RESTARTING, now)
    moved = await hw.world.runtimes.compare_and_swap(restarting)
    running = StatusChange(
        "rt-1", Status.RESTARTING, moved.version, Status.RUNNING, now, container_id="c-new"
    )
    await hw.world.runtimes.compare_and_swap(running)

    assert await applier.apply_batch([ev(hw, "rt-1", E.CONTAINER_STARTED, "c-new")]) == [True]
    after = await hw.world.record()
    assert (after.container_id, after.engine_health) == ("c-new", "healthy")
    assert summaries.reads == [["rt-1"], ["rt-1"]]
