"""RuntimeStore.list seen again after each kind of write: a backend that keeps
records it built (SQL reuses a record while its row is unchanged) must never
list one a later write changed, and pages keep their cursors."""

from __future__ import annotations

from datetime import timedelta

from runplane.domain.records import StatusChange
from runplane.domain.statuses import Status
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_record,
)

LATER = T0 + timedelta(seconds=30)


async def listed(stores: Stores, status: Status | None = None, limit: int = 100) -> list:
    page = await stores.runtimes.list(status=status, limit=limit)
    return page.records


class RuntimeListingContract:
    async def test_a_status_change_after_a_listing_is_listed(self, stores: Stores) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        assert await listed(stores, Status.RUNNING) == [record]

        change = StatusChange(
            runtime_id="rt-1",
            expected_status=Status.RUNNING,
            expected_version=record.version,
            status=Status.STOPPING,
            at=LATER,
            status_deadline=LATER + timedelta(seconds=30),
        )
        moved = await stores.runtimes.compare_and_swap(change)

        assert await listed(stores, Status.RUNNING) == []
        assert await listed(stores) == [moved]

    async def test_a_health_summary_written_without_a_version_bump_is_listed(
        self, stores: Stores
    ) -> None:
        await stores.runtimes.create(make_record(engine_health="healthy"))
        await listed(stores)

        updated = await stores.engine_health.set_engine_health(
            "rt-1", "probe_failed", status=Status.RUNNING, container_id="c-1", at=LATER
        )

        assert updated is not None
        assert await listed(stores) == [updated]
        assert (await listed(stores))[0].engine_health == "probe_failed"

    async def test_pages_listed_twice_are_the_same_and_see_new_records(
        self, stores: Stores
    ) -> None:
        for i in range(5):
            await stores.runtimes.create(make_record(f"rt-{i}"))
        first = await stores.runtimes.list(limit=2)
        again = await stores.runtimes.list(limit=2)
        assert first == again
        assert first.next_cursor == "rt-1"

        await stores.runtimes.create(make_record("rt-00"))
        page = await stores.runtimes.list(limit=2)

        assert [r.runtime_id for r in page.records] == ["rt-0", "rt-00"]
        rest = await stores.runtimes.list(after=page.next_cursor, limit=10)
        assert [r.runtime_id for r in rest.records] == ["rt-1", "rt-2", "rt-3", "rt-4"]
        assert rest.next_cursor is None


class TestInMemoryRuntimeListing(InMemoryBackend, RuntimeListingContract):
    pass


class TestSqliteRuntimeListing(SqliteBackend, RuntimeListingContract):
    pass


class TestPostgresRuntimeListing(PostgresBackend, RuntimeListingContract):
    pass
