"""Agents' beats: their wire form refuses what is not a clean host, and the host
monitor imports them (registering, refreshing, bringing back a down host only
once `before_up` lets it) and calls `on_down` for every host it marks down."""

from __future__ import annotations

import json

import pytest

from runplane.domain.host_details import HostDetails, details_from_json, details_to_json
from runplane.domain.hosts import Capacity, HostStatus, InvalidHost
from runplane.services.hosts.registry import HostRegistry
from runplane.testing.host_beats import InMemoryHostBeats
from runplane.testing.hosts import InMemoryHostStore
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.host_monitor import HostMonitor
from runplane.workers.leadership import Leadership
from tests.support.clock import FakeClock
from tests.support.host_hooks import FakeHooks
from tests.support.tokens import SequentialTokens

DOWN_AFTER_S = 10.0
DETAILS = HostDetails(
    host_id="agent-1",
    address="10.0.0.2",
    labels={"zone": "b"},
    capacity=Capacity(cpus=4.0, memory_mb=8192, max_runtimes=20),
    drivers=("docker", "process"),
)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = InMemoryHostStore()
        tokens = SequentialTokens()
        self.registry = HostRegistry(self.store, self.clock, tokens, down_after_s=DOWN_AFTER_S)
        self.beats = InMemoryHostBeats()
        self.hooks = FakeHooks(self.store)
        leadership = Leadership(
            InMemoryLeaseStore(self.clock), tokens, "runplane:host-monitor", ttl_ms=600_000
        )
        self.monitor = HostMonitor(
            self.registry, leadership, beats=self.beats, hooks=self.hooks, interval_s=1.0
        )

    def types(self) -> list[str]:
        return [e.type for e in self.store.outbox.events]

    async def status(self) -> HostStatus:
        return (await self.registry.get("agent-1")).status

    async def lose_the_host(self) -> None:
        await self.beats.beat(DETAILS, 5)
        await self.monitor.check_once()
        self.beats.expire("agent-1")
        self.clock.advance(DOWN_AFTER_S + 1)
        [down] = await self.monitor.check_once()
        assert down.status is HostStatus.DOWN


@pytest.fixture
def world() -> World:
    return World()


def test_details_round_trip_through_their_wire_form() -> None:
    assert details_from_json(details_to_json(DETAILS)) == DETAILS
    assert details_from_json(details_to_json(DETAILS).encode()) == DETAILS


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        "not json",
        "[]",
        json.dumps({"host_id": "bad:id"}),
        json.dumps({"host_id": 7}),
        json.dumps({"host_id": "h", "labels": {"bad key": "v"}}),
        json.dumps({"host_id": "h", "labels": ["zone"]}),
        json.dumps({"host_id": "h", "capacity": {"cpus": -1}}),
        json.dumps({"host_id": "h", "capacity": {"memory_mb": "lots"}}),
        json.dumps({"host_id": "h", "capacity": {"max_runtimes": 1.5}}),
        json.dumps({"host_id": "h", "drivers": ["process", "Not A Driver"]}),
        json.dumps({"host_id": "h", "drivers": "process"}),
        json.dumps({"host_id": "h", "address": "x" * 513}),
        json.dumps({"host_id": "h", "address": ["x"]}),
        json.dumps({"host_id": "h", "pad": "x" * 70_000}),
    ],
)
def test_a_beat_that_is_not_a_clean_host_is_refused(raw: str | bytes) -> None:
    with pytest.raises(InvalidHost):
        details_from_json(raw)


async def test_a_beat_registers_an_unknown_host_then_heartbeats_it(world: World) -> None:
    await world.beats.beat(DETAILS, 5)
    assert await world.monitor.check_once() == []
    host = await world.registry.get("agent-1")
    assert (host.status, host.drivers, host.capacity.max_runtimes) == (
        HostStatus.UP,
        ("docker", "process"),
        20,
    )
    version = host.version
    world.clock.advance(DOWN_AFTER_S)
    await world.monitor.check_once()
    beaten = await world.registry.get("agent-1")
    # A plain heartbeat: the monitor's clock, no new version, no event.
    assert (beaten.last_heartbeat_at, beaten.version) == (world.clock.now(), version)
    assert world.types() == ["host.up"]
    assert world.hooks.calls == []


async def test_changed_details_register_the_host_again(world: World) -> None:
    await world.beats.beat(DETAILS, 5)
    await world.monitor.check_once()
    await world.beats.beat(HostDetails("agent-1", labels={"zone": "c"}, drivers=["process"]), 5)
    await world.monitor.check_once()
    host = await world.registry.get("agent-1")
    assert (host.labels, host.drivers, host.address) == ({"zone": "c"}, ("process",), "")


async def test_a_host_whose_beats_stop_is_marked_down_and_on_down_is_called(
    world: World,
) -> None:
    await world.lose_the_host()
    assert world.types() == ["host.up", "host.down"]
    # Called after the down write, with the host as marked.
    assert world.hooks.calls == [("on_down", "agent-1", HostStatus.DOWN)]
    await world.monitor.check_once()
    assert len(world.hooks.calls) == 1  # once per loss


async def test_before_up_runs_before_the_host_comes_back(world: World) -> None:
    await world.lose_the_host()
    await world.beats.beat(DETAILS, 5)
    await world.monitor.check_once()
    assert world.hooks.calls[-1] == ("before_up", "agent-1", HostStatus.DOWN)
    assert await world.status() is HostStatus.UP
    assert world.types() == ["host.up", "host.down", "host.up"]


async def test_a_false_before_up_keeps_the_host_down_and_asks_again(world: World) -> None:
    await world.lose_the_host()
    world.hooks.allow_up = False
    await world.beats.beat(DETAILS, 5)
    for _ in range(2):
        await world.monitor.check_once()
        assert await world.status() is HostStatus.DOWN
    world.hooks.fail_up = True  # a hook that raises counts as False
    await world.monitor.check_once()
    assert await world.status() is HostStatus.DOWN
    world.hooks.fail_up, world.hooks.allow_up = False, True
    await world.monitor.check_once()
    assert await world.status() is HostStatus.UP
    asked = [call for call in world.hooks.calls if call[0] == "before_up"]
    assert asked == [("before_up", "agent-1", HostStatus.DOWN)] * 4
    assert world.types() == ["host.up", "host.down", "host.up"]


async def test_an_on_down_that_raises_is_called_again_next_look(world: World) -> None:
    world.hooks.fail_down = True
    await world.lose_the_host()  # the monitor lives on
    world.hooks.fail_down = False
    await world.monitor.check_once()
    await world.monitor.check_once()
    downs = [call for call in world.hooks.calls if call[0] == "on_down"]
    assert downs == [("on_down", "agent-1", HostStatus.DOWN)] * 2


async def test_a_down_host_with_changed_details_asks_before_up_too(world: World) -> None:
    await world.lose_the_host()
    world.hooks.allow_up = False
    await world.beats.beat(HostDetails("agent-1", drivers=["process"]), 5)
    await world.monitor.check_once()
    host = await world.registry.get("agent-1")
    assert (host.status, host.drivers) == (HostStatus.DOWN, ("docker", "process"))
