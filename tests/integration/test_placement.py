"""Placement (services/hosts/placement.py) over real stores: the hosts and the
runtime records it reads on SQLite, and on the in-memory fakes alike."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.domain.errors import InvalidSpec
from runplane.domain.hosts import Capacity, Host, HostStatus, NoHostAvailable
from runplane.domain.statuses import Status
from runplane.ports.hosts import HostStore
from runplane.ports.lifecycle import RuntimeStore
from runplane.services.hosts.placement import Placement
from runplane.testing.hosts import InMemoryHostStore
from tests.support.store_backends import InMemoryBackend, SqliteBackend, Stores, make_record

T0 = datetime(2030, 1, 2, tzinfo=UTC)
SPEC: dict[str, Any] = {"command": ["/bin/true"]}


@dataclass(frozen=True, slots=True)
class World:
    hosts: HostStore
    runtimes: RuntimeStore

    async def host(
        self,
        host_id: str,
        *,
        status: HostStatus = HostStatus.UP,
        labels: dict[str, str] | None = None,
        max_runtimes: int | None = None,
        drivers: tuple[str, ...] = ("process",),
    ) -> None:
        await self.hosts.register(
            Host(
                host_id=host_id,
                address="10.0.0.1",
                status=status,
                admin_status=status,
                version=1,
                registered_at=T0,
                last_heartbeat_at=T0,
                labels=labels or {},
                capacity=Capacity(cpus=4, max_runtimes=max_runtimes),
                drivers=drivers,
            )
        )

    async def runtimes_on(self, host_id: str, n: int, status: Status = Status.RUNNING) -> None:
        for i in range(n):
            record = make_record(f"{host_id}-{status}-{i}", host_id=host_id, status=status)
            await self.runtimes.create(record)


def constant(value: float) -> Any:
    return lambda: value


class PlacementContract:
    async def test_the_least_loaded_fitting_host_is_chosen(self, world: World) -> None:
        await world.host("a")
        await world.host("b")
        await world.host("c", status=HostStatus.CORDONED)
        await world.runtimes_on("a", 2)
        await world.runtimes_on("b", 1)
        await world.runtimes_on("b", 3, Status.STOPPED)  # not live: no load
        placement = Placement(world.hosts, world.runtimes, rand=constant(0.0))
        assert await placement.choose("process", SPEC) == "b"
        assert await placement.choose("process", SPEC, exclude=("b",)) == "a"

    async def test_the_spec_labels_pick_the_hosts(self, world: World) -> None:
        await world.host("a", labels={"zone": "a"})
        await world.host("b", labels={"zone": "b", "gpu": "true"})
        placement = Placement(world.hosts, world.runtimes)
        spec = {**SPEC, "placement": {"host_labels": {"gpu": "true"}}}
        assert {await placement.choose("process", spec) for _ in range(10)} == {"b"}

    async def test_ties_spread_by_the_draw(self, world: World) -> None:
        for name in ("a", "b", "c"):
            await world.host(name)
        draws = iter([0.0, 0.5, 0.9, 0.1, 0.4, 0.7])
        placement = Placement(world.hosts, world.runtimes, rand=lambda: next(draws))
        chosen = Counter([await placement.choose("process", SPEC) for _ in range(6)])
        assert chosen == {"a": 2, "b": 2, "c": 2}

    async def test_no_host_available_says_why(self, world: World) -> None:
        placement = Placement(world.hosts, world.runtimes)
        with pytest.raises(NoHostAvailable, match="no host is registered"):
            await placement.choose("process", SPEC)
        await world.host("a", max_runtimes=2, labels={"zone": "a"})
        await world.host("b", status=HostStatus.DRAINING)
        await world.runtimes_on("a", 2)
        with pytest.raises(NoHostAvailable) as full:
            await placement.choose("process", SPEC)
        assert str(full.value) == (
            "no host can take a process runtime: every host that fits is full (a 2/2 runtimes)"
        )
        with pytest.raises(NoHostAvailable, match="offers driver 'docker'"):
            await placement.choose("docker", SPEC)
        spec = {**SPEC, "placement": {"host_labels": {"zone": "b"}}}
        with pytest.raises(NoHostAvailable, match="has the labels zone=b"):
            await placement.choose("process", spec)

    async def test_a_malformed_placement_is_invalid_spec(self, world: World) -> None:
        await world.host("a")
        placement = Placement(world.hosts, world.runtimes)
        with pytest.raises(InvalidSpec, match="placement must be an object"):
            await placement.choose("process", {**SPEC, "placement": "zone=a"})

    async def test_status_of_a_host(self, world: World) -> None:
        await world.host("a")
        await world.host("b", status=HostStatus.CORDONED)
        placement = Placement(world.hosts, world.runtimes)
        assert await placement.status_of("a") is HostStatus.UP
        assert await placement.status_of("b") is HostStatus.CORDONED
        assert await placement.status_of("nowhere") is None


class TestPlacementInMemory(InMemoryBackend, PlacementContract):
    @pytest.fixture
    def world(self, stores: Stores) -> World:
        return World(InMemoryHostStore(), stores.runtimes)


class TestPlacementSqlite(SqliteBackend, PlacementContract):
    @pytest.fixture
    def world(self, stores: Stores, database: SqlDatabase) -> World:
        return World(SqlHostStore(database), stores.runtimes)
