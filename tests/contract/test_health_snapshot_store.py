"""HealthSnapshotStore contract: the in-memory fake, SQLite and Postgres keep one
row per runtime alike: the latest health event reported, replaced in place."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.reactions import HealthSnapshot, HealthSummary
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
)


def snapshot(runtime_id: str = "rt-1", **changes: Any) -> HealthSnapshot:
    values: dict[str, Any] = {
        "runtime_id": runtime_id,
        "container_id": "c-1",
        "event_type": HealthEventType.PROBE_FAILED,
        "summary": HealthSummary.PROBE_FAILED,
        "observed_at": T0,
        "details": {"detail": "HTTP 503", "latency_s": 0.25, "tags": ["a", "b"], "none": None},
    }
    values.update(changes)
    return HealthSnapshot(**values)


class HealthSnapshotStoreContract:
    """Every HealthSnapshotStore backend passes these. A subclass mixes in a
    backend from tests.support.store_backends, which provides `stores`."""

    async def test_an_unknown_runtime_has_no_row(self, stores: Stores) -> None:
        assert await stores.health_snapshots.get("rt-1") is None

    async def test_an_upserted_row_reads_back(self, stores: Stores) -> None:
        row = snapshot(details={"exit_code": 3, "nested": {"signal": None, "list": [1, 2.5]}})

        await stores.health_snapshots.upsert(row)

        assert await stores.health_snapshots.get("rt-1") == row

    async def test_a_second_upsert_replaces_the_row(self, stores: Stores) -> None:
        await stores.health_snapshots.upsert(snapshot())
        later = snapshot(
            container_id="c-2",
            event_type=HealthEventType.CONTAINER_OOM,
            summary=HealthSummary.OOM,
            observed_at=T0 + timedelta(seconds=9),
            details={},
        )

        await stores.health_snapshots.upsert(later)

        assert await stores.health_snapshots.get("rt-1") == later

    async def test_rows_are_per_runtime(self, stores: Stores) -> None:
        first = snapshot("rt-1")
        second = snapshot("rt-2", summary=HealthSummary.HEALTHY, details={"n": 2})

        await stores.health_snapshots.upsert(first)
        await stores.health_snapshots.upsert(second)

        assert await stores.health_snapshots.get("rt-1") == first
        assert await stores.health_snapshots.get("rt-2") == second

    async def test_the_observed_time_comes_back_in_utc(self, stores: Stores) -> None:
        plus_nine = timezone(timedelta(hours=9))
        await stores.health_snapshots.upsert(snapshot(observed_at=T0.astimezone(plus_nine)))

        row = await stores.health_snapshots.get("rt-1")

        assert row is not None
        assert row.observed_at == T0
        assert row.observed_at.utcoffset() == timedelta(0)
        assert row.observed_at.microsecond == T0.microsecond

    async def test_the_row_is_a_copy_of_what_was_upserted(self, stores: Stores) -> None:
        details: dict[str, Any] = {"tags": ["a"]}
        await stores.health_snapshots.upsert(snapshot(details=details))
        details["tags"].append("changed later")

        row = await stores.health_snapshots.get("rt-1")
        assert row is not None
        row.details["tags"].append("changed by a reader")

        again = await stores.health_snapshots.get("rt-1")
        assert again is not None
        assert again.details == {"tags": ["a"]}


class TestInMemoryHealthSnapshotStore(InMemoryBackend, HealthSnapshotStoreContract):
    pass


class TestSqliteHealthSnapshotStore(SqliteBackend, HealthSnapshotStoreContract):
    pass


class TestPostgresHealthSnapshotStore(PostgresBackend, HealthSnapshotStoreContract):
    pass
