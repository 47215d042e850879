"""SqlRuntimeSettings (labels, timeouts, idle rules) on SQLite and Postgres:
label rows written with the record and selected by every term kind, the
deadline compare-and-swap, the due and idle-watched queries, and listings
that see every settings write (the record cache)."""

from __future__ import annotations

from datetime import timedelta

import pytest_asyncio

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.runtime_settings import SqlRuntimeSettings
from runplane.domain.records import Keep, StatusChange
from runplane.domain.runtime_settings import IdleAction, IdleRule, parse_selector
from runplane.domain.statuses import Status
from tests.support.store_backends import T0, PostgresBackend, SqliteBackend, Stores, make_record

LATER = T0 + timedelta(seconds=30)


async def selected(settings: SqlRuntimeSettings, *terms: str, **kw: object) -> list[str]:
    page = await settings.list(parse_selector(list(terms)), **kw)  # type: ignore[arg-type]
    return [r.runtime_id for r in page.records]


class RuntimeSettingsContract:
    @pytest_asyncio.fixture(loop_scope="session")
    async def settings(self, stores: Stores, database: SqlDatabase) -> SqlRuntimeSettings:
        return SqlRuntimeSettings(database)

    async def test_labels_are_stored_with_the_record_and_selected(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        await stores.runtimes.create(make_record("rt-a", labels={"app": "web", "tier": "1"}))
        await stores.runtimes.create(make_record("rt-b", labels={"app": "db"}))
        await stores.runtimes.create(make_record("rt-c", team_id="team-b"))

        assert (await stores.runtimes.get("rt-a")).labels == {"app": "web", "tier": "1"}  # type: ignore[union-attr]
        assert await selected(settings, "app=web") == ["rt-a"]
        assert await selected(settings, "app") == ["rt-a", "rt-b"]
        assert await selected(settings, "!app") == ["rt-c"]
        assert await selected(settings, "app!=web") == ["rt-b", "rt-c"]
        assert await selected(settings, "app", "tier=1") == ["rt-a"]
        assert await selected(settings, "app=web,tier=2") == []
        assert await selected(settings, "!app", team_id="team-a") == []

    async def test_relabelling_replaces_the_rows_and_the_listing_sees_it(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        await stores.runtimes.create(make_record("rt-a", labels={"app": "web"}))
        assert await selected(settings, "app=web") == ["rt-a"]

        record = await settings.update("rt-a", labels={"app": "api"}, at=LATER)

        assert record is not None
        assert record.labels == {"app": "api"}
        assert record.version == 1  # a settings write is no operation
        assert await selected(settings, "app=web") == []
        assert await selected(settings, "app=api") == ["rt-a"]
        listed = (await stores.runtimes.list()).records
        assert [r.labels for r in listed] == [{"app": "api"}]
        assert await settings.update("rt-none", labels={}, at=LATER) is None

    async def test_the_deadline_is_a_compare_and_swap(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        await stores.runtimes.create(make_record("rt-a"))
        first = await settings.set_timeout(
            "rt-a", expected=None, timeout_at=LATER, on_timeout="pause", at=T0
        )
        assert first is not None
        assert (first.timeout_at, first.on_timeout) == (LATER, "pause")

        stale = await settings.set_timeout(
            "rt-a", expected=None, timeout_at=T0, on_timeout=Keep.KEEP, at=T0
        )
        assert stale is None
        moved = await settings.set_timeout(
            "rt-a", expected=LATER, timeout_at=None, on_timeout=Keep.KEEP, at=T0
        )
        assert moved is not None
        assert moved.timeout_at is None
        assert moved.on_timeout == "pause"

    async def test_due_timeouts_are_the_passed_deadlines_earliest_first(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        for name, offset in (("rt-a", 20), ("rt-b", 10), ("rt-c", 60)):
            await stores.runtimes.create(
                make_record(name, timeout_at=T0 + timedelta(seconds=offset), on_timeout="stop")
            )
        await stores.runtimes.create(make_record("rt-d"))

        due = await settings.due_timeouts(T0 + timedelta(seconds=30))

        assert [r.runtime_id for r in due] == ["rt-b", "rt-a"]
        assert [r.runtime_id for r in await settings.due_timeouts(LATER, limit=1)] == ["rt-b"]

    async def test_idle_watched_are_the_running_records_with_a_rule(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        await stores.runtimes.create(make_record("rt-a", idle_after_s=30, idle_action="pause"))
        await stores.runtimes.create(make_record("rt-b"))
        await stores.runtimes.create(
            make_record("rt-c", status=Status.STOPPED, idle_after_s=30, idle_action="stop")
        )
        await settings.update("rt-b", idle=IdleRule(5, IdleAction.STOP), at=LATER)

        watched = await settings.idle_watched()

        assert [r.runtime_id for r in watched] == ["rt-a", "rt-b"]
        assert watched[1].active_at == LATER  # a new rule counts from now
        record = await settings.update("rt-b", idle=None, at=LATER)
        assert record is not None
        assert record.idle_after_s is None
        assert [r.runtime_id for r in await settings.idle_watched()] == ["rt-a"]

    async def test_activity_only_moves_forward_and_survives_status_changes(
        self, stores: Stores, settings: SqlRuntimeSettings
    ) -> None:
        await stores.runtimes.create(make_record("rt-a", idle_after_s=30, idle_action="stop"))
        await settings.mark_active(["rt-a"], LATER)
        await settings.mark_active(["rt-a"], T0)

        change = StatusChange(
            runtime_id="rt-a",
            expected_status=Status.RUNNING,
            expected_version=1,
            status=Status.STOPPING,
            at=LATER,
        )
        moved = await stores.runtimes.compare_and_swap(change)

        assert moved.active_at == LATER
        assert moved.idle_after_s == 30


class TestSqliteRuntimeSettings(SqliteBackend, RuntimeSettingsContract):
    pass


class TestPostgresRuntimeSettings(PostgresBackend, RuntimeSettingsContract):
    pass
