"""Outbox contract: the in-memory fake, SQLite and Postgres hold the events committed
with each write alike, hand them out oldest first and forget them once sent."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from runplane.domain.errors import CasConflict, DuplicateJobId
from runplane.domain.lifecycle_events import STATE_CHANGED, Actor, LifecycleEvent, OutboxEvent
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_entry,
    make_record,
)

SENT_AT = T0 + timedelta(minutes=5)


def event(
    n: int, *, at_s: float = 0, type_: str = "runtime.stop", **changes: object
) -> LifecycleEvent:
    values: dict[str, object] = {
        "id": f"evt-{n}",
        "type": type_,
        "runtime_id": "rt-1",
        "time": T0 + timedelta(seconds=at_s),
        "sequence": n,
        "outcome": "success",
        "team_id": "team-a",
        "actor": Actor("system", "runplane", "runplane"),
        "status_from": "running",
        "status_to": "stopping",
    }
    values.update(changes)
    return LifecycleEvent(**values)  # type: ignore[arg-type]


def stop_change(record: RuntimeRecord) -> StatusChange:
    return StatusChange(
        runtime_id=record.runtime_id,
        expected_status=record.status,
        expected_version=record.version,
        status=Status.STOPPING,
        at=T0 + timedelta(seconds=30),
    )


def ids(events: list[OutboxEvent]) -> list[str]:
    return [e.event_id for e in events]


class OutboxContract:
    """Every Outbox backend passes these. A subclass mixes in a backend from
    tests.support.store_backends, which provides the `stores` fixture."""

    async def test_an_empty_outbox_has_nothing_pending(self, stores: Stores) -> None:
        assert await stores.outbox.pending() == []
        assert await stores.outbox.oldest_pending_at() is None

    async def test_events_of_create_cas_and_append_are_pending_in_commit_order(
        self, stores: Stores
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record, events=[event(1), event(2)])
        await stores.runtimes.compare_and_swap(
            stop_change(record), entry=make_entry("op-1"), events=[event(3)]
        )
        await stores.operations.append(make_entry("op-2"), events=[event(4)])

        pending = await stores.outbox.pending()

        assert ids(pending) == ["evt-1", "evt-2", "evt-3", "evt-4"]
        seqs = [e.seq for e in pending]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 4

    async def test_a_pending_event_carries_its_envelope_and_columns(self, stores: Stores) -> None:
        plus_two = timezone(timedelta(hours=2))
        committed = event(1, time=T0.astimezone(plus_two), team_id="team-b", runtime_id="rt-9")
        await stores.runtimes.create(make_record("rt-9"), events=[committed])

        [pending] = await stores.outbox.pending()

        assert (pending.event_id, pending.runtime_id, pending.team_id, pending.type) == (
            "evt-1",
            "rt-9",
            "team-b",
            "runtime.stop",
        )
        assert pending.durable
        assert pending.payload == committed.to_json()
        assert pending.created_at == T0
        assert pending.created_at.utcoffset() == timedelta(0)

    async def test_a_transient_event_is_kept_as_not_durable(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record(), events=[event(1, type_=STATE_CHANGED)])

        [pending] = await stores.outbox.pending()

        assert (pending.type, pending.durable) == (STATE_CHANGED, False)

    async def test_pending_hands_out_at_most_limit_oldest_first(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record(), events=[event(n) for n in range(1, 6)])

        assert ids(await stores.outbox.pending(limit=2)) == ["evt-1", "evt-2"]
        assert ids(await stores.outbox.pending(limit=1)) == ["evt-1"]
        assert len(await stores.outbox.pending(limit=100)) == 5

    async def test_sent_events_are_no_longer_pending(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record(), events=[event(n) for n in range(1, 5)])
        first, second, *_ = await stores.outbox.pending()

        await stores.outbox.mark_sent([first.seq, second.seq], SENT_AT)

        assert ids(await stores.outbox.pending()) == ["evt-3", "evt-4"]
        assert ids(await stores.outbox.pending(limit=1)) == ["evt-3"]

    async def test_marking_nothing_unknown_or_twice_changes_nothing_else(
        self, stores: Stores
    ) -> None:
        await stores.runtimes.create(make_record(), events=[event(1), event(2)])
        first, second = await stores.outbox.pending()

        await stores.outbox.mark_sent([], SENT_AT)
        await stores.outbox.mark_sent([second.seq + 1000], SENT_AT)
        await stores.outbox.mark_sent([first.seq], SENT_AT)
        await stores.outbox.mark_sent([first.seq], SENT_AT + timedelta(seconds=1))

        assert await stores.outbox.pending() == [second]

    async def test_oldest_pending_at_is_the_earliest_time_still_pending(
        self, stores: Stores
    ) -> None:
        # Committed out of time order: the outbox keeps commit order (seq), but
        # the oldest pending event is the one with the earliest time.
        times = {1: 20.0, 2: 5.0, 3: 10.0}
        await stores.runtimes.create(
            make_record(), events=[event(n, at_s=at) for n, at in times.items()]
        )
        first, second, third = await stores.outbox.pending()
        assert await stores.outbox.oldest_pending_at() == T0 + timedelta(seconds=5)

        await stores.outbox.mark_sent([second.seq], SENT_AT)
        assert await stores.outbox.oldest_pending_at() == T0 + timedelta(seconds=10)

        await stores.outbox.mark_sent([first.seq, third.seq], SENT_AT)
        assert await stores.outbox.oldest_pending_at() is None

    async def test_a_conflicting_cas_puts_no_event_in_the_outbox(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        stale = make_record(version=7)

        with pytest.raises(CasConflict):
            await stores.runtimes.compare_and_swap(stop_change(stale), events=[event(1)])

        assert await stores.outbox.pending() == []

    async def test_a_cas_with_several_events_keeps_them_in_the_order_given(
        self, stores: Stores
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        given = [event(n) for n in (5, 2, 9, 1, 7)]

        await stores.runtimes.compare_and_swap(
            stop_change(record), entry=make_entry("op-1"), events=given
        )

        assert ids(await stores.outbox.pending()) == ["evt-5", "evt-2", "evt-9", "evt-1", "evt-7"]

    async def test_a_cas_of_the_same_shape_with_and_without_an_entry_writes_what_it_is_given(
        self, stores: Stores
    ) -> None:
        first, second = make_record("rt-1"), make_record("rt-2")
        for record in (first, second):
            await stores.runtimes.create(record)

        await stores.runtimes.compare_and_swap(stop_change(first), events=[event(1)])
        await stores.runtimes.compare_and_swap(
            stop_change(second), entry=make_entry("op-2", runtime_id="rt-2")
        )

        assert ids(await stores.outbox.pending()) == ["evt-1"]
        logged = await stores.operations.list_for_runtime("rt-2")
        assert [e.operation_id for e in logged] == ["op-2"]
        assert await stores.operations.list_for_runtime("rt-1") == []

    async def test_a_write_refused_for_its_job_id_puts_no_event_in_the_outbox(
        self, stores: Stores
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        await stores.operations.append(make_entry("op-1", job_id="job-1"))

        with pytest.raises(DuplicateJobId):
            await stores.runtimes.compare_and_swap(
                stop_change(record), entry=make_entry("op-2", job_id="job-1"), events=[event(1)]
            )
        with pytest.raises(DuplicateJobId):
            await stores.operations.append(make_entry("op-3", job_id="job-1"), events=[event(2)])

        assert await stores.outbox.pending() == []


class TestInMemoryOutbox(InMemoryBackend, OutboxContract):
    pass


class TestSqliteOutbox(SqliteBackend, OutboxContract):
    pass


class TestPostgresOutbox(PostgresBackend, OutboxContract):
    pass
