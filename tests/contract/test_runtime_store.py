"""RuntimeStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

import pytest

from runplane.domain.errors import CasConflict, DuplicateJobId, RuntimeAlreadyExists
from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import TRANSITIONS, InvalidTransition, Status
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_entry,
    make_record,
)

LATER = T0 + timedelta(seconds=30)

ALLOWED = [(current, target) for current in Status for target in sorted(TRANSITIONS[current])]
REFUSED = [
    (current, target)
    for current in Status
    for target in Status
    if target not in TRANSITIONS[current]
]
NAMED_REFUSALS = [
    (Status.PENDING, Status.RUNNING),
    (Status.REMOVED, Status.STOPPED),
    (Status.STOPPED, Status.PAUSED),
    (Status.RUNNING, Status.RUNNING),
    (Status.REMOVING, Status.STARTING),
]


def stop_change(
    record: RuntimeRecord, *, status: Status = Status.STOPPING, **overrides: object
) -> StatusChange:
    change = StatusChange(
        runtime_id=record.runtime_id,
        expected_status=record.status,
        expected_version=record.version,
        status=status,
        at=LATER,
        status_deadline=LATER + timedelta(seconds=30),
    )
    return replace(change, **overrides)


def forged_change(record: RuntimeRecord, target: Status) -> StatusChange:
    """A change from the record's status to `target` that never passed
    StatusChange's own check (built for an allowed move, then its status set
    underneath): what the store alone must refuse."""
    change = stop_change(record, status=min(TRANSITIONS[record.status]))
    object.__setattr__(change, "status", target)
    return change


def moved_event(record: RuntimeRecord, target: Status) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"ev-{record.runtime_id}",
        type="runtime.state.changed",
        runtime_id=record.runtime_id,
        time=LATER,
        sequence=record.version + 1,
        outcome="success",
        team_id=record.team_id,
        actor=Actor("system", "test"),
        status_from=str(record.status),
        status_to=str(target),
    )


def pair_id(pair: tuple[Status, Status]) -> str:
    return f"{pair[0]}->{pair[1]}"


class RuntimeStoreContract:
    """Every RuntimeStore backend passes these. A subclass mixes in a backend from
    tests.support.store_backends, which provides the `stores` fixture."""

    async def test_create_then_get_returns_the_record(self, stores: Stores) -> None:
        record = make_record(spec={"command": ["a", "b"], "n": 1.5, "x": None, "ok": True})
        await stores.runtimes.create(record)
        assert await stores.runtimes.get("rt-1") == record

    async def test_get_unknown_is_none(self, stores: Stores) -> None:
        assert await stores.runtimes.get("nope") is None

    async def test_create_refuses_a_taken_id_and_keeps_the_first(self, stores: Stores) -> None:
        first = make_record()
        await stores.runtimes.create(first)
        with pytest.raises(RuntimeAlreadyExists):
            await stores.runtimes.create(make_record(team_id="team-b"))
        assert await stores.runtimes.get("rt-1") == first

    async def test_datetimes_come_back_aware_utc_with_microseconds(self, stores: Stores) -> None:
        plus_two = timezone(timedelta(hours=2))
        created = T0.astimezone(plus_two)
        await stores.runtimes.create(make_record(created_at=created, stopped_at=None))
        record = await stores.runtimes.get("rt-1")
        assert record is not None
        assert record.created_at == T0
        assert record.created_at.utcoffset() == timedelta(0)
        assert record.created_at.microsecond == T0.microsecond
        assert record.stopped_at is None

    async def test_list_filters_by_status_and_team(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record("a", team_id="t1", status=Status.RUNNING))
        await stores.runtimes.create(make_record("b", team_id="t2", status=Status.RUNNING))
        await stores.runtimes.create(make_record("c", team_id="t1", status=Status.STOPPED))
        everything = await stores.runtimes.list()
        running = await stores.runtimes.list(status=Status.RUNNING)
        team = await stores.runtimes.list(team_id="t1")
        both = await stores.runtimes.list(status=Status.STOPPED, team_id="t1")
        assert [r.runtime_id for r in everything.records] == ["a", "b", "c"]
        assert [r.runtime_id for r in running.records] == ["a", "b"]
        assert [r.runtime_id for r in team.records] == ["a", "c"]
        assert [r.runtime_id for r in both.records] == ["c"]
        assert everything.next_cursor is None

    async def test_count_for_team_counts_its_records_in_the_statuses(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record("a", team_id="t1", status=Status.RUNNING))
        await stores.runtimes.create(make_record("b", team_id="t1", status=Status.PAUSED))
        await stores.runtimes.create(make_record("c", team_id="t1", status=Status.REMOVED))
        await stores.runtimes.create(make_record("d", team_id="t2", status=Status.RUNNING))
        live = {Status.RUNNING, Status.PAUSED}
        assert await stores.runtimes.count_for_team("t1", live) == 2
        assert await stores.runtimes.count_for_team("t1", set(Status)) == 3
        assert await stores.runtimes.count_for_team("t2", live) == 1
        assert await stores.runtimes.count_for_team("t3", live) == 0
        assert await stores.runtimes.count_for_team("t1", ()) == 0

    async def test_any_in_tells_whether_a_record_is_in_one_of_the_statuses(
        self, stores: Stores
    ) -> None:
        transient = {Status.STARTING, Status.STOPPING, Status.REMOVING}
        assert await stores.runtimes.any_in(transient) is False
        await stores.runtimes.create(make_record("a", status=Status.RUNNING))
        await stores.runtimes.create(make_record("b", team_id="t2", status=Status.STOPPING))
        assert await stores.runtimes.any_in(transient) is True
        assert await stores.runtimes.any_in({Status.STOPPING}) is True
        assert await stores.runtimes.any_in({Status.RUNNING, Status.PAUSED}) is True
        assert await stores.runtimes.any_in({Status.PAUSED, Status.ERROR}) is False
        assert await stores.runtimes.any_in(()) is False
        # The same set again (a statement kept by the SQL store), after a move out of it.
        await stores.runtimes.compare_and_swap(
            StatusChange(
                runtime_id="b",
                expected_status=Status.STOPPING,
                expected_version=1,
                status=Status.STOPPED,
                at=T0 + timedelta(seconds=1),
            )
        )
        assert await stores.runtimes.any_in(transient) is False

    async def test_list_orders_ids_bytewise(self, stores: Stores) -> None:
        ids = ["b", "B", "a.b", "a-b", "A:1", "0", "a_b", "ab"]
        for runtime_id in ids:
            await stores.runtimes.create(make_record(runtime_id))
        page = await stores.runtimes.list()
        assert [r.runtime_id for r in page.records] == sorted(ids)

    async def test_list_pages_with_a_keyset_cursor(self, stores: Stores) -> None:
        ids = [f"rt-{n:02d}" for n in range(7)]
        for runtime_id in reversed(ids):
            await stores.runtimes.create(make_record(runtime_id))
        await stores.runtimes.create(make_record("rt-99", team_id="other"))
        seen: list[str] = []
        cursors: list[str | None] = []
        after: str | None = None
        while True:
            page = await stores.runtimes.list(team_id="team-a", after=after, limit=3)
            seen += [r.runtime_id for r in page.records]
            cursors.append(page.next_cursor)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert seen == ids
        assert cursors == ["rt-02", "rt-05", None]

    async def test_a_full_last_page_has_no_cursor(self, stores: Stores) -> None:
        for n in range(4):
            await stores.runtimes.create(make_record(f"rt-{n}"))
        first = await stores.runtimes.list(limit=2)
        last = await stores.runtimes.list(after=first.next_cursor, limit=2)
        assert first.next_cursor == "rt-1"
        assert [r.runtime_id for r in last.records] == ["rt-2", "rt-3"]
        assert last.next_cursor is None

    async def test_list_refuses_a_limit_below_one(self, stores: Stores) -> None:
        with pytest.raises(ValueError, match="limit"):
            await stores.runtimes.list(limit=0)

    async def test_cas_writes_the_change_and_bumps_the_version(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        change = stop_change(record, container_id=None, engine_health="stopping")
        updated = await stores.runtimes.compare_and_swap(change)
        expected = replace(
            record,
            status=Status.STOPPING,
            version=2,
            container_id=None,
            engine_health="stopping",
            status_deadline=LATER + timedelta(seconds=30),
            updated_at=LATER,
            last_op_at=LATER,
        )
        assert updated == expected
        assert await stores.runtimes.get("rt-1") == expected

    async def test_cas_can_replace_the_spec(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        spec = {"command": ["new"], "nested": {"list": [1, {"k": "v"}]}}
        updated = await stores.runtimes.compare_and_swap(stop_change(record, spec=spec))
        assert updated.spec == spec
        stored = await stores.runtimes.get("rt-1")
        assert stored is not None
        assert stored.spec == spec

    @pytest.mark.parametrize(
        "mismatch",
        [
            {"expected_status": Status.PAUSED},
            {"expected_version": 2},
            {"expected_version": 0},
            {"expected_container_id": "c-other"},
            {"expected_container_id": None},
        ],
        ids=["status", "version-ahead", "version-behind", "container", "container-null"],
    )
    async def test_cas_conflicts_and_writes_nothing(
        self, stores: Stores, mismatch: dict[str, object]
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        change = stop_change(record, **mismatch)
        with pytest.raises(CasConflict):
            await stores.runtimes.compare_and_swap(change, entry=make_entry(job_id="job-1"))
        assert await stores.runtimes.get("rt-1") == record
        assert await stores.operations.get("op-1") is None
        assert await stores.operations.find_by_job_id("team-a", "job-1") is None

    async def test_cas_on_an_unknown_runtime_conflicts(self, stores: Stores) -> None:
        with pytest.raises(CasConflict):
            await stores.runtimes.compare_and_swap(stop_change(make_record("ghost")))

    async def test_cas_matches_the_expected_container(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        change = stop_change(record, expected_container_id="c-1")
        assert (await stores.runtimes.compare_and_swap(change)).version == 2

    async def test_cas_matches_a_null_container(self, stores: Stores) -> None:
        record = make_record(container_id=None, status=Status.PENDING)
        await stores.runtimes.create(record)
        change = stop_change(record, expected_container_id=None, status=Status.STARTING)
        assert (await stores.runtimes.compare_and_swap(change)).status is Status.STARTING

    async def test_a_second_cas_on_the_same_version_conflicts(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        first = await stores.runtimes.compare_and_swap(stop_change(record))
        with pytest.raises(CasConflict):
            await stores.runtimes.compare_and_swap(stop_change(record, status=Status.PAUSING))
        assert await stores.runtimes.get("rt-1") == first

    async def test_cas_appends_its_entry(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        entry = make_entry(job_id="job-1")
        await stores.runtimes.compare_and_swap(stop_change(record), entry=entry)
        assert await stores.operations.get("op-1") == entry
        assert await stores.operations.find_by_job_id("team-a", "job-1") == entry

    async def test_cas_with_a_taken_job_id_writes_nothing(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        first = make_entry("op-1", job_id="job-1")
        await stores.operations.append(first)
        with pytest.raises(DuplicateJobId):
            await stores.runtimes.compare_and_swap(
                stop_change(record), entry=make_entry("op-2", job_id="job-1")
            )
        assert await stores.runtimes.get("rt-1") == record
        assert await stores.operations.get("op-2") is None
        assert await stores.operations.list_for_runtime("rt-1") == [first]

    @pytest.mark.parametrize("move", NAMED_REFUSALS, ids=pair_id)
    async def test_cas_refuses_a_move_the_table_does_not_allow(
        self, stores: Stores, move: tuple[Status, Status]
    ) -> None:
        current, target = move
        record = make_record(status=current)
        await stores.runtimes.create(record)
        with pytest.raises(InvalidTransition) as refused:
            await stores.runtimes.compare_and_swap(
                forged_change(record, target),
                entry=make_entry(job_id="job-1"),
                events=[moved_event(record, target)],
            )
        assert (refused.value.current, refused.value.target) == (current, target)
        assert f"not to {target}" in refused.value.reason
        assert await stores.runtimes.get("rt-1") == record
        assert await stores.operations.get("op-1") is None
        assert await stores.operations.find_by_job_id("team-a", "job-1") is None
        assert await stores.outbox.pending() == []

    async def test_cas_refuses_every_move_the_table_does_not_allow(self, stores: Stores) -> None:
        records = [make_record(f"rt-{n:03d}", status=move[0]) for n, move in enumerate(REFUSED)]
        for record in records:
            await stores.runtimes.create(record)
        refused: list[tuple[Status, Status]] = []
        for n, (record, (_, target)) in enumerate(zip(records, REFUSED, strict=True)):
            with pytest.raises(InvalidTransition) as error:
                await stores.runtimes.compare_and_swap(
                    forged_change(record, target),
                    entry=make_entry(f"op-{n}", record.runtime_id, job_id=f"job-{n}"),
                    events=[moved_event(record, target)],
                )
            refused.append((error.value.current, error.value.target))
        assert refused == REFUSED
        assert (await stores.runtimes.list(limit=len(records))).records == records
        for record in records:
            assert await stores.operations.list_for_runtime(record.runtime_id) == []
        assert await stores.outbox.pending() == []

    async def test_cas_accepts_every_move_the_table_allows(self, stores: Stores) -> None:
        for n, (current, target) in enumerate(ALLOWED):
            record = make_record(f"rt-{n:03d}", status=current)
            await stores.runtimes.create(record)
            entry = make_entry(f"op-{n}", record.runtime_id, job_id=f"job-{n}")
            updated = await stores.runtimes.compare_and_swap(
                stop_change(record, status=target),
                entry=entry,
                events=[moved_event(record, target)],
            )
            assert (updated.status, updated.version) == (target, 2)
            assert await stores.operations.list_for_runtime(record.runtime_id) == [entry]
        assert len(await stores.outbox.pending()) == len(ALLOWED)


class TestInMemoryRuntimeStore(InMemoryBackend, RuntimeStoreContract):
    pass


class TestSqliteRuntimeStore(SqliteBackend, RuntimeStoreContract):
    pass


class TestPostgresRuntimeStore(PostgresBackend, RuntimeStoreContract):
    pass
