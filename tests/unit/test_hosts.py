"""Hosts: the domain rules, the registry and the host monitor, on the in-memory
store and a clock moved by hand."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from runplane.domain.event_reading import EventFilter, StoredEvent
from runplane.domain.hosts import (
    HOST_TRANSITIONS,
    Capacity,
    Host,
    HostAction,
    HostStatus,
    HostStatusChange,
    InvalidHost,
    InvalidHostTransition,
    parse_labels,
)
from runplane.domain.lifecycle_events import Actor
from runplane.domain.webhooks.model import Webhook
from runplane.domain.webhooks.rules import receives
from runplane.services.hosts.registry import (
    HostActionRefused,
    HostDetails,
    HostNotFound,
    HostRegistry,
)
from runplane.testing.hosts import InMemoryHostStore
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.host_monitor import HostHeartbeat, HostMonitor
from runplane.workers.leadership import Leadership
from tests.support.clock import EPOCH, FakeClock
from tests.support.tokens import SequentialTokens

ADMIN = Actor("api_key", "key_admin")
DOWN_AFTER_S = 10.0


class Hosts:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = InMemoryHostStore()
        self.tokens = SequentialTokens()
        self.registry = HostRegistry(
            self.store, self.clock, self.tokens, down_after_s=DOWN_AFTER_S, event_source="/rp/a"
        )
        self.leases = InMemoryLeaseStore(self.clock)

    def monitor(self) -> HostMonitor:
        # A TTL past every clock step here: the lease never lapses between rounds.
        leadership = Leadership(self.leases, self.tokens, "runplane:host-monitor", ttl_ms=600_000)
        return HostMonitor(self.registry, leadership, interval_s=1.0)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(e.payload) for e in self.store.outbox.events]

    def types(self) -> list[str]:
        return [e.type for e in self.store.outbox.events]


@pytest.fixture
def hosts() -> Hosts:
    return Hosts()


DETAILS = HostDetails(
    host_id="h-1",
    address="10.0.0.1",
    labels={"zone": "a"},
    capacity=Capacity(cpus=2.0, memory_mb=4096),
    drivers=("process",),
)


# --- the domain rules -------------------------------------------------------------


def test_no_host_moves_to_the_status_it_has() -> None:
    for status, targets in HOST_TRANSITIONS.items():
        assert status not in targets
    assert set(HOST_TRANSITIONS) == set(HostStatus)


def test_a_live_host_has_the_status_its_admin_set() -> None:
    with pytest.raises(InvalidHostTransition, match="admin status is cordoned"):
        HostStatusChange("h", HostStatus.DOWN, 3, HostStatus.UP, HostStatus.CORDONED, EPOCH)
    with pytest.raises(InvalidHostTransition):
        HostStatusChange("h", HostStatus.DOWN, 3, HostStatus.DOWN, HostStatus.UP, EPOCH)
    with pytest.raises(InvalidHost):
        HostStatusChange("h", HostStatus.UP, 3, HostStatus.DOWN, HostStatus.DOWN, EPOCH)
    back = HostStatusChange(
        "h", HostStatus.DOWN, 3, HostStatus.CORDONED, HostStatus.CORDONED, EPOCH
    )
    assert back.status is HostStatus.CORDONED


def test_a_host_is_down_once_its_heartbeat_is_older_than_the_threshold() -> None:
    host = Host("h", "", HostStatus.UP, HostStatus.UP, 1, EPOCH, EPOCH)
    limit = timedelta(seconds=DOWN_AFTER_S)
    assert not host.heartbeat_missed(EPOCH + limit, limit)
    assert host.heartbeat_missed(EPOCH + limit + timedelta(milliseconds=1), limit)


@pytest.mark.parametrize("host_id", ["", ".h", "a/b", "x" * 129, "h:1"])
def test_host_ids_follow_the_rule(host_id: str) -> None:
    with pytest.raises(InvalidHost):
        Host(host_id, "", HostStatus.UP, HostStatus.UP, 1, EPOCH, EPOCH)


def test_labels_and_capacity_are_bounded() -> None:
    assert parse_labels(" zone=a , gpu=false,") == {"zone": "a", "gpu": "false"}
    for text in ("zone", "=a", "bad key=1", ",".join(f"k{i}=v" for i in range(33))):
        with pytest.raises(InvalidHost):
            parse_labels(text)
    with pytest.raises(InvalidHost):
        Capacity(cpus=0)
    with pytest.raises(InvalidHost):
        Capacity(max_runtimes=-1)


# --- the registry and the monitor -------------------------------------------------


async def test_registering_brings_a_host_up_with_one_event(hosts: Hosts) -> None:
    host = await hosts.registry.register(DETAILS)
    assert (host.status, host.drivers, host.capacity.memory_mb) == (
        HostStatus.UP,
        ("process",),
        4096,
    )
    [event] = hosts.events()
    assert event["type"] == "host.up"
    assert event["subject"] == "h-1"
    data = event["data"]
    assert isinstance(data, dict)
    assert data["team_id"] is None
    assert data["host_id"] == "h-1"
    assert data["resource"] == {"id": "h-1", "type": "host"}
    assert data["metadata"] == {"zone": "a", "address": "10.0.0.1"}


async def test_a_missed_heartbeat_marks_the_host_down_once(hosts: Hosts) -> None:
    monitor = hosts.monitor()
    await hosts.registry.register(DETAILS)
    hosts.clock.advance(DOWN_AFTER_S)
    assert await monitor.check_once() == []  # exactly the threshold: still up
    hosts.clock.advance(1)
    [marked] = await monitor.check_once()
    assert marked.status is HostStatus.DOWN
    assert await monitor.check_once() == []
    assert hosts.types() == ["host.up", "host.down"]
    down = hosts.events()[1]["data"]
    assert isinstance(down, dict)
    assert (down["status_from"], down["status_to"], down["reason"]) == (
        "up",
        "down",
        "heartbeat_missed",
    )


async def test_a_heartbeat_brings_a_down_host_back_up(hosts: Hosts) -> None:
    monitor = hosts.monitor()
    await hosts.registry.register(DETAILS)
    hosts.clock.advance(DOWN_AFTER_S + 1)
    await monitor.check_once()
    back = await hosts.registry.heartbeat("h-1")
    assert back.status is HostStatus.UP
    assert (await hosts.registry.heartbeat("h-1")).status is HostStatus.UP
    assert hosts.types() == ["host.up", "host.down", "host.up"]


async def test_a_heartbeat_keeps_a_host_up_and_writes_no_event(hosts: Hosts) -> None:
    monitor = hosts.monitor()
    await hosts.registry.register(DETAILS)
    for _ in range(5):
        hosts.clock.advance(DOWN_AFTER_S - 1)
        await hosts.registry.heartbeat("h-1")
        assert await monitor.check_once() == []
    assert hosts.types() == ["host.up"]


async def test_a_cordoned_host_that_was_down_comes_back_cordoned(hosts: Hosts) -> None:
    monitor = hosts.monitor()
    await hosts.registry.register(DETAILS)
    cordoned = await hosts.registry.act("h-1", HostAction.CORDON, actor=ADMIN)
    assert cordoned.status is HostStatus.CORDONED
    hosts.clock.advance(DOWN_AFTER_S + 1)
    [down] = await monitor.check_once()
    assert (down.status, down.admin_status) == (HostStatus.DOWN, HostStatus.CORDONED)
    back = await hosts.registry.heartbeat("h-1")
    assert back.status is HostStatus.CORDONED
    # Registering again (a restarted serve) keeps the admin's word too.
    again = await hosts.registry.register(DETAILS)
    assert again.status is HostStatus.CORDONED
    assert hosts.types() == ["host.up", "host.down", "host.up"]
    last = hosts.events()[-1]["data"]
    assert isinstance(last, dict)
    assert last["status_to"] == "cordoned"


async def test_admin_moves_and_what_they_refuse(hosts: Hosts) -> None:
    await hosts.registry.register(DETAILS)
    drained = await hosts.registry.act("h-1", HostAction.DRAIN, actor=ADMIN)
    assert (drained.status, drained.admin_status) == (HostStatus.DRAINING, HostStatus.DRAINING)
    again = await hosts.registry.act("h-1", HostAction.DRAIN, actor=ADMIN)
    assert again == drained  # asked twice: nothing changes
    cordoned = await hosts.registry.act("h-1", HostAction.CORDON, actor=ADMIN)
    assert cordoned.status is HostStatus.CORDONED
    up = await hosts.registry.act("h-1", HostAction.UNCORDON, actor=ADMIN)
    assert up.status is HostStatus.UP
    hosts.clock.advance(DOWN_AFTER_S + 1)
    await hosts.registry.mark_missed()
    with pytest.raises(HostActionRefused, match="is down"):
        await hosts.registry.act("h-1", HostAction.CORDON, actor=ADMIN)
    with pytest.raises(HostNotFound):
        await hosts.registry.act("nobody", HostAction.DRAIN, actor=ADMIN)
    with pytest.raises(HostNotFound):
        await hosts.registry.heartbeat("nobody")


async def test_only_the_leader_marks_hosts_down(hosts: Hosts) -> None:
    first, second = hosts.monitor(), hosts.monitor()
    await hosts.registry.register(DETAILS)
    assert await first.check_once() == []  # takes the lead
    hosts.clock.advance(DOWN_AFTER_S + 1)
    assert await second.check_once() == []
    assert len(await first.check_once()) == 1


async def test_the_heartbeat_worker_registers_then_beats(hosts: Hosts) -> None:
    worker = HostHeartbeat(hosts.registry, DETAILS, interval_s=2.0)
    first = await worker.beat_once()
    hosts.clock.advance(2)
    beat = await worker.beat_once()
    assert beat.last_heartbeat_at == first.last_heartbeat_at + timedelta(seconds=2)
    assert hosts.types() == ["host.up"]


def test_team_scoped_reads_never_see_host_events() -> None:
    envelope = {"type": "host.down", "subject": "h-1", "data": {"team_id": None}}
    event = StoredEvent("1-0", envelope)
    assert not EventFilter(team_id="alpha").matches(event)
    assert EventFilter().matches(event)


async def test_team_webhooks_never_receive_host_events(hosts: Hosts) -> None:
    await hosts.registry.register(DETAILS)
    hosts.clock.advance(DOWN_AFTER_S + 1)
    await hosts.registry.mark_missed()
    created = EPOCH - timedelta(days=1)

    def webhook(team_id: str | None) -> Webhook:
        return Webhook("wh", team_id, "https://example.com", (), True, created, created)

    for envelope in hosts.events():
        assert envelope["type"] in {"host.up", "host.down"}
        assert receives(webhook(None), envelope)
        assert not receives(webhook("alpha"), envelope)
