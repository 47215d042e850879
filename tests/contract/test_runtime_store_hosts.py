"""RuntimeStore contract, the host side: `list(host_id=)` and
`count_live_by_host()`, alike on the in-memory fake, SQLite and Postgres."""

from __future__ import annotations

from runplane.domain.placement import HOLDS_HOST
from runplane.domain.statuses import Status
from tests.support.store_backends import (
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_record,
)


class RuntimeStoreHostsContract:
    async def test_list_filters_by_host(self, stores: Stores) -> None:
        await stores.runtimes.create(make_record("a", host_id="h1", team_id="t1"))
        await stores.runtimes.create(make_record("b", host_id="h2", team_id="t1"))
        await stores.runtimes.create(make_record("c", host_id="h1", team_id="t2"))
        await stores.runtimes.create(make_record("d", host_id=None))
        await stores.runtimes.create(
            make_record("e", host_id="h1", team_id="t1", status=Status.STOPPED)
        )
        on_h1 = await stores.runtimes.list(host_id="h1")
        team_on_h1 = await stores.runtimes.list(host_id="h1", team_id="t1")
        running_on_h1 = await stores.runtimes.list(host_id="h1", status=Status.RUNNING)
        assert [r.runtime_id for r in on_h1.records] == ["a", "c", "e"]
        assert [r.runtime_id for r in team_on_h1.records] == ["a", "e"]
        assert [r.runtime_id for r in running_on_h1.records] == ["a", "c"]
        assert (await stores.runtimes.list(host_id="h3")).records == []
        assert [r.host_id for r in (await stores.runtimes.list()).records] == [
            "h1",
            "h2",
            "h1",
            None,
            "h1",
        ]

    async def test_list_by_host_pages(self, stores: Stores) -> None:
        for n in range(5):
            await stores.runtimes.create(make_record(f"r{n}", host_id="h1"))
            await stores.runtimes.create(make_record(f"s{n}", host_id="h2"))
        first = await stores.runtimes.list(host_id="h1", limit=3)
        assert [r.runtime_id for r in first.records] == ["r0", "r1", "r2"]
        rest = await stores.runtimes.list(host_id="h1", after=first.next_cursor, limit=3)
        assert [r.runtime_id for r in rest.records] == ["r3", "r4"]
        assert rest.next_cursor is None

    async def test_count_live_by_host_counts_what_holds_a_host(self, stores: Stores) -> None:
        for n, status in enumerate(Status):
            await stores.runtimes.create(make_record(f"h1-{n:02}", host_id="h1", status=status))
        await stores.runtimes.create(make_record("h2-run", host_id="h2"))
        await stores.runtimes.create(make_record("h2-paused", host_id="h2", status=Status.PAUSED))
        await stores.runtimes.create(make_record("h3-off", host_id="h3", status=Status.STOPPED))
        await stores.runtimes.create(make_record("nowhere", host_id=None))
        assert await stores.runtimes.count_live_by_host() == {"h1": len(HOLDS_HOST), "h2": 2}

    async def test_count_live_by_host_is_empty_without_records(self, stores: Stores) -> None:
        assert await stores.runtimes.count_live_by_host() == {}


class TestInMemoryRuntimeStoreHosts(InMemoryBackend, RuntimeStoreHostsContract):
    pass


class TestSqliteRuntimeStoreHosts(SqliteBackend, RuntimeStoreHostsContract):
    pass


class TestPostgresRuntimeStoreHosts(PostgresBackend, RuntimeStoreHostsContract):
    pass
