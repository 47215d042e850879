"""HostStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.domain.hosts import (
    Capacity,
    Host,
    HostConflict,
    HostStatus,
    HostStatusChange,
    InvalidHostTransition,
)
from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.ports.hosts import HostStore
from runplane.ports.lifecycle_events import Outbox
from runplane.testing.hosts import InMemoryHostStore
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
)


@dataclass(frozen=True, slots=True)
class HostParts:
    hosts: HostStore
    outbox: Outbox


def make_host(host_id: str = "h-1", **overrides: Any) -> Host:
    values: dict[str, Any] = {
        "host_id": host_id,
        "address": "10.0.0.1",
        "status": HostStatus.UP,
        "admin_status": HostStatus.UP,
        "version": 1,
        "registered_at": T0,
        "last_heartbeat_at": T0,
        "labels": {"zone": "a", "gpu": "false"},
        "capacity": Capacity(cpus=4.0, memory_mb=8192, max_runtimes=50),
        "drivers": ("docker", "process"),
    }
    values.update(overrides)
    return Host(**values)


def host_event(host_id: str, type_: str, n: int = 1) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"evt-{host_id}-{n}",
        type=type_,
        runtime_id=host_id,
        time=T0,
        sequence=n,
        outcome="success",
        team_id=None,
        actor=Actor("system", "host-monitor"),
        host_id=host_id,
        resource_type="host",
    )


def down(host: Host, **overrides: Any) -> HostStatusChange:
    values: dict[str, Any] = {
        "host_id": host.host_id,
        "expected_status": host.status,
        "expected_version": host.version,
        "status": HostStatus.DOWN,
        "admin_status": host.admin_status,
        "at": T0 + timedelta(seconds=30),
    }
    values.update(overrides)
    return HostStatusChange(**values)


class HostStoreContract:
    async def test_a_registered_host_comes_back_whole(self, parts: HostParts) -> None:
        registration = await parts.hosts.register(
            make_host(), events=[host_event("h-1", "host.up")]
        )
        assert registration.created
        assert registration.host == make_host()
        assert await parts.hosts.get("h-1") == make_host()
        assert await parts.hosts.get("h-2") is None
        pending = await parts.outbox.pending()
        assert [(e.type, e.runtime_id, e.team_id) for e in pending] == [("host.up", "h-1", None)]

    async def test_registering_again_updates_details_and_keeps_status(
        self, parts: HostParts
    ) -> None:
        first = (await parts.hosts.register(make_host())).host
        cordoned = await parts.hosts.compare_and_set(
            HostStatusChange(
                "h-1", HostStatus.UP, first.version, HostStatus.CORDONED, HostStatus.CORDONED, T0
            )
        )
        later = T0 + timedelta(minutes=5)
        again = make_host(
            address="10.0.0.9",
            labels={"zone": "b"},
            capacity=Capacity(cpus=2.0),
            drivers=("process",),
            registered_at=later,
            last_heartbeat_at=later,
        )
        registration = await parts.hosts.register(again, events=[host_event("h-1", "host.up")])
        assert not registration.created
        host = registration.host
        assert (host.status, host.admin_status) == (HostStatus.CORDONED, HostStatus.CORDONED)
        assert host.registered_at == T0
        assert host.version == cordoned.version + 1
        assert (host.address, host.labels, host.drivers) == (
            "10.0.0.9",
            {"zone": "b"},
            ("process",),
        )
        assert host.capacity == Capacity(cpus=2.0)
        assert host.last_heartbeat_at == later
        assert await parts.outbox.pending() == []  # only a new host's events are written

    async def test_a_heartbeat_moves_only_the_heartbeat_forward(self, parts: HostParts) -> None:
        await parts.hosts.register(make_host())
        later = T0 + timedelta(seconds=3)
        beat = await parts.hosts.heartbeat("h-1", later)
        assert beat == make_host(last_heartbeat_at=later)
        stale = await parts.hosts.heartbeat("h-1", T0 + timedelta(seconds=1))
        assert stale is not None
        assert stale.last_heartbeat_at == later
        assert await parts.hosts.heartbeat("nobody", later) is None

    async def test_a_status_change_commits_with_its_events(self, parts: HostParts) -> None:
        host = (await parts.hosts.register(make_host())).host
        moved = await parts.hosts.compare_and_set(
            down(host), events=[host_event("h-1", "host.down", 2)]
        )
        assert (moved.status, moved.admin_status, moved.version) == (
            HostStatus.DOWN,
            HostStatus.UP,
            2,
        )
        assert await parts.hosts.get("h-1") == moved
        assert [e.type for e in await parts.outbox.pending()] == ["host.down"]

    async def test_a_stale_change_conflicts_and_writes_nothing(self, parts: HostParts) -> None:
        host = (await parts.hosts.register(make_host())).host
        await parts.hosts.compare_and_set(down(host))
        with pytest.raises(HostConflict):
            await parts.hosts.compare_and_set(
                down(host), events=[host_event("h-1", "host.down", 2)]
            )
        with pytest.raises(HostConflict):
            await parts.hosts.compare_and_set(down(make_host("h-404")))
        assert await parts.outbox.pending() == []

    async def test_a_heartbeat_after_the_cut_off_wins(self, parts: HostParts) -> None:
        host = (await parts.hosts.register(make_host())).host
        cut_off = T0 + timedelta(seconds=10)
        await parts.hosts.heartbeat("h-1", cut_off + timedelta(seconds=1))
        with pytest.raises(HostConflict):
            await parts.hosts.compare_and_set(down(host, heartbeat_before=cut_off))
        still = await parts.hosts.get("h-1")
        assert still is not None
        assert still.status is HostStatus.UP
        later = cut_off + timedelta(seconds=30)
        marked = await parts.hosts.compare_and_set(down(host, heartbeat_before=later))
        assert marked.status is HostStatus.DOWN

    async def test_the_store_refuses_a_move_the_table_refuses(self, parts: HostParts) -> None:
        host = (await parts.hosts.register(make_host())).host
        change = down(host)
        # Built around the constructor's check, as a writer of its own might.
        object.__setattr__(change, "status", HostStatus.CORDONED)  # admin status: up
        with pytest.raises(InvalidHostTransition):
            await parts.hosts.compare_and_set(change)
        assert await parts.hosts.get("h-1") == host

    async def test_a_host_comes_back_from_down_only_to_its_admin_status(
        self, parts: HostParts
    ) -> None:
        host = (await parts.hosts.register(make_host())).host
        cordoned = await parts.hosts.compare_and_set(
            HostStatusChange(
                "h-1", HostStatus.UP, host.version, HostStatus.CORDONED, HostStatus.CORDONED, T0
            )
        )
        gone = await parts.hosts.compare_and_set(down(cordoned))
        assert (gone.status, gone.admin_status) == (HostStatus.DOWN, HostStatus.CORDONED)
        with pytest.raises(HostConflict):
            await parts.hosts.compare_and_set(
                HostStatusChange(
                    "h-1", HostStatus.DOWN, gone.version, HostStatus.UP, HostStatus.UP, T0
                )
            )
        back = await parts.hosts.compare_and_set(
            HostStatusChange(
                "h-1", HostStatus.DOWN, gone.version, HostStatus.CORDONED, HostStatus.CORDONED, T0
            )
        )
        assert back.status is HostStatus.CORDONED

    async def test_list_filters_by_status_and_labels(self, parts: HostParts) -> None:
        await parts.hosts.register(make_host("h-b", labels={"zone": "b"}))
        await parts.hosts.register(make_host("h-a", labels={"zone": "a", "gpu": "true"}))
        c = (await parts.hosts.register(make_host("h-c", labels={"zone": "a"}))).host
        await parts.hosts.compare_and_set(down(c))
        ids = [h.host_id for h in await parts.hosts.list()]
        assert ids == ["h-a", "h-b", "h-c"]
        up = await parts.hosts.list(status=HostStatus.UP)
        assert [h.host_id for h in up] == ["h-a", "h-b"]
        zone_a = await parts.hosts.list(labels={"zone": "a"})
        assert [h.host_id for h in zone_a] == ["h-a", "h-c"]
        both = await parts.hosts.list(status=HostStatus.DOWN, labels={"zone": "a"})
        assert [h.host_id for h in both] == ["h-c"]
        assert await parts.hosts.list(labels={"zone": "a", "gpu": "false"}) == []

    async def test_values_are_copies(self, parts: HostParts) -> None:
        host = make_host()
        await parts.hosts.register(host)
        host.labels["zone"] = "changed"
        stored = await parts.hosts.get("h-1")
        assert stored is not None
        assert stored.labels == {"zone": "a", "gpu": "false"}
        assert replace(stored, labels={}) != stored


class TestInMemoryHostStore(InMemoryBackend, HostStoreContract):
    @pytest.fixture
    def parts(self) -> HostParts:
        store = InMemoryHostStore()
        return HostParts(store, store.outbox)


class TestSqliteHostStore(SqliteBackend, HostStoreContract):
    @pytest.fixture
    def parts(self, stores: Stores, database: SqlDatabase) -> HostParts:
        return HostParts(SqlHostStore(database), stores.outbox)


class TestPostgresHostStore(PostgresBackend, HostStoreContract):
    @pytest.fixture
    def parts(self, stores: Stores, database: SqlDatabase) -> HostParts:
        return HostParts(SqlHostStore(database), stores.outbox)
