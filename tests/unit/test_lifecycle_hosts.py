"""Operations on runtimes that live on hosts: each driver call goes to the
runtime's host, carrying the lease and the record version; start and restart
move a runtime off a host that is draining, down or unknown."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from runplane.domain.drivers import ContainerInfo, StartedContainer
from runplane.domain.errors import ErrorCode
from runplane.domain.hosts import HostStatus, NoHostAvailable
from runplane.domain.operations import OpKind
from runplane.domain.statuses import Status
from runplane.ports.drivers import Driver
from runplane.services import driver_call
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from tests.support.world import World


class Seen(InMemoryDriver):
    """Records the lease context each call was made under."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[tuple[str, str, int]] = []

    def _note(self) -> None:
        call = driver_call.current()
        assert call is not None, "a changing call was made without the lease context"
        self.contexts.append((call.runtime_id, call.lease_token, call.record_version))

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        self._note()
        return await super().start(runtime_id, spec)

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        self._note()
        return await super().stop(container_id, timeout_s=timeout_s)


class Router:
    def __init__(self, hosts: Mapping[str, Driver]) -> None:
        self.hosts = hosts
        self.local_host_id: str | None = None

    def driver(self, host_id: str | None, name: str) -> Driver | None:
        return self.hosts.get(host_id or "")


class Placement:
    """Statuses by host; choose: the first up host in order, not excluded."""

    def __init__(self, statuses: dict[str, HostStatus]) -> None:
        self.statuses = statuses

    async def choose(
        self, driver: str, spec: Mapping[str, Any], *, exclude: Collection[str] = ()
    ) -> str:
        for host_id, status in self.statuses.items():
            if status is HostStatus.UP and host_id not in exclude:
                return host_id
        raise NoHostAvailable("no host can take this runtime: none is up")

    async def status_of(self, host_id: str) -> HostStatus | None:
        return self.statuses.get(host_id)


def world_on_hosts() -> tuple[World, dict[str, Seen], Placement]:
    world = World.build()
    drivers = {"h1": Seen(), "h2": Seen()}
    placement = Placement({"h1": HostStatus.UP, "h2": HostStatus.UP})
    world.deps = dataclasses.replace(world.deps, router=Router(drivers), placement=placement)
    world.lifecycle = Lifecycle.build(world.deps, "memory")
    return world, drivers, placement


async def test_a_new_runtime_is_placed_and_started_on_its_host() -> None:
    world, drivers, _ = world_on_hosts()
    record = await world.create()
    assert record.host_id == "h1"
    assert drivers["h1"].container(record.container_id or "") is not None
    assert drivers["h2"].started == 0


async def test_every_changing_call_carries_the_lease_and_the_current_version() -> None:
    world, drivers, _ = world_on_hosts()
    await world.create()
    assert (await world.do(OpKind.RESTART)).ok
    contexts = drivers["h1"].contexts
    assert [c[0] for c in contexts] == ["rt-1"] * 3  # start, then stop + start
    assert all(token for _, token, _ in contexts)
    versions = [version for _, _, version in contexts]
    assert versions == sorted(versions)
    assert versions[0] >= 1
    assert contexts[1][1] == contexts[2][1] != contexts[0][1]  # one lease per operation


async def test_a_restart_on_a_down_host_moves_without_touching_it() -> None:
    world, drivers, placement = world_on_hosts()
    first = await world.create()
    placement.statuses["h1"] = HostStatus.DOWN
    assert (await world.do(OpKind.RESTART)).ok
    record = await world.record()
    assert (record.status, record.host_id) == (Status.RUNNING, "h2")
    assert drivers["h2"].container(record.container_id or "") is not None
    # The old host cannot be reached: nothing was asked of it (it stops the
    # old container itself when it returns).
    assert len(drivers["h1"].contexts) == 1
    assert drivers["h1"].container(first.container_id or "") is not None
    restart = next(e for e in await world.entries() if e.op is OpKind.RESTART)
    assert restart.details["rescheduled"] == {"from": "h1", "to": "h2"}


async def test_a_start_on_a_draining_host_moves_and_cleans_up_there() -> None:
    world, drivers, placement = world_on_hosts()
    first = await world.create()
    assert (await world.do(OpKind.STOP)).ok
    placement.statuses["h1"] = HostStatus.DRAINING
    assert (await world.do(OpKind.START)).ok
    record = await world.record()
    assert record.host_id == "h2"
    assert drivers["h1"].container(first.container_id or "") is None  # removed there


async def test_a_cordoned_host_keeps_its_runtimes() -> None:
    world, _drivers, placement = world_on_hosts()
    await world.create()
    placement.statuses["h1"] = HostStatus.CORDONED
    assert (await world.do(OpKind.RESTART)).ok
    record = await world.record()
    assert record.host_id == "h1"
    restart = next(e for e in await world.entries() if e.op is OpKind.RESTART)
    assert "rescheduled" not in restart.details


async def test_no_host_to_go_to_is_service_unavailable() -> None:
    world, _, placement = world_on_hosts()
    await world.create()
    placement.statuses.update(h1=HostStatus.DOWN, h2=HostStatus.CORDONED)
    result = await world.do(OpKind.RESTART)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert "no host can take this runtime" in (result.error_message or "")
    assert (await world.record()).host_id == "h1"
