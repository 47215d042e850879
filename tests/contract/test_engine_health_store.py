"""EngineHealthStore contract: the in-memory fake, SQLite and Postgres write a
record's health summary alike: only while its status and container still
match, and never as a status write (the version stays)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

import pytest

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


class EngineHealthStoreContract:
    """Every EngineHealthStore backend passes these. A subclass mixes in a backend
    from tests.support.store_backends, which provides the `stores` fixture."""

    async def test_the_summary_is_written_alone_while_status_and_container_match(
        self, stores: Stores
    ) -> None:
        record = make_record(engine_health="healthy")
        await stores.runtimes.create(record)

        updated = await stores.engine_health.set_engine_health(
            "rt-1", "probe_failed", status=Status.RUNNING, container_id="c-1", at=LATER
        )

        expected = replace(record, engine_health="probe_failed", updated_at=LATER)
        assert updated == expected
        assert await stores.runtimes.get("rt-1") == expected

    @pytest.mark.parametrize(
        ("status", "container_id"),
        [(Status.STOPPING, "c-1"), (Status.RUNNING, "c-other"), (Status.RUNNING, None)],
        ids=["status", "container", "container-null"],
    )
    async def test_a_record_that_moved_on_is_left_alone(
        self, stores: Stores, status: Status, container_id: str | None
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record)

        updated = await stores.engine_health.set_engine_health(
            "rt-1", "exited", status=status, container_id=container_id, at=LATER
        )

        assert updated is None
        assert await stores.runtimes.get("rt-1") == record

    async def test_an_unknown_runtime_is_none(self, stores: Stores) -> None:
        assert (
            await stores.engine_health.set_engine_health(
                "ghost", "exited", status=Status.RUNNING, container_id="c-1", at=LATER
            )
            is None
        )
        assert await stores.runtimes.get("ghost") is None

    async def test_a_record_without_a_container_matches_a_null_container(
        self, stores: Stores
    ) -> None:
        await stores.runtimes.create(make_record(status=Status.ERROR, container_id=None))

        updated = await stores.engine_health.set_engine_health(
            "rt-1", "disappeared", status=Status.ERROR, container_id=None, at=LATER
        )

        assert updated is not None
        assert (updated.engine_health, updated.container_id) == ("disappeared", None)

    async def test_the_time_comes_back_in_utc(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record())
        minus_five = timezone(timedelta(hours=-5))

        updated = await stores.engine_health.set_engine_health(
            "rt-1",
            "oom",
            status=Status.RUNNING,
            container_id="c-1",
            at=LATER.astimezone(minus_five),
        )

        stored = await stores.runtimes.get("rt-1")
        assert updated is not None
        assert stored is not None
        for seen in (updated.updated_at, stored.updated_at):
            assert seen == LATER
            assert seen.utcoffset() == timedelta(0)

    async def test_an_operations_cas_on_the_version_it_read_still_wins(
        self, stores: Stores
    ) -> None:
        record = make_record()
        await stores.runtimes.create(record)
        await stores.engine_health.set_engine_health(
            "rt-1", "probe_failed", status=Status.RUNNING, container_id="c-1", at=LATER
        )

        moved = await stores.runtimes.compare_and_swap(
            StatusChange(
                runtime_id="rt-1",
                expected_status=Status.RUNNING,
                expected_version=record.version,
                status=Status.STOPPING,
                at=LATER + timedelta(seconds=1),
            )
        )

        assert (moved.version, moved.last_op_at) == (
            record.version + 1,
            LATER + timedelta(seconds=1),
        )
        assert moved.engine_health == "probe_failed"


class TestInMemoryEngineHealthStore(InMemoryBackend, EngineHealthStoreContract):
    pass


class TestSqliteEngineHealthStore(SqliteBackend, EngineHealthStoreContract):
    pass


class TestPostgresEngineHealthStore(PostgresBackend, EngineHealthStoreContract):
    pass
