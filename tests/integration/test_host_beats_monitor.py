"""Agents' beats on a real Redis, imported by the host monitor into SQL host
records (SQLite): a beating host is registered and heartbeats, a host whose
beat expired is marked down, and a returning one comes back only once
`before_up` lets it. And the seat: one holder per host id; a holder that finds
its seat taken stops announcing the host and says so."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.host_beats import RedisHostBeats
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import host_agent_lease, host_beat_key, lease_key
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import HostStatus
from runplane.services.hosts.registry import HostRegistry
from runplane.services.hosts.seat import HostSeat
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.host_monitor import HostMonitor
from runplane.workers.host_presence import HostPresence
from runplane.workers.leadership import Leadership
from tests.support.clock import FakeClock
from tests.support.host_hooks import FakeHooks
from tests.support.redis import RedisServer
from tests.support.store_backends import migrated_sqlite_url
from tests.support.tokens import SequentialTokens

DOWN_AFTER_S = 10.0


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    yield database
    await database.dispose()


async def test_the_monitor_imports_beats_into_sql_hosts(
    client: redis.asyncio.Redis, database: SqlDatabase
) -> None:
    clock = FakeClock()
    tokens = SequentialTokens()
    store = SqlHostStore(database)
    registry = HostRegistry(store, clock, tokens, down_after_s=DOWN_AFTER_S)
    hooks = FakeHooks(store)
    beats = RedisHostBeats(client)
    monitor = HostMonitor(
        registry,
        Leadership(InMemoryLeaseStore(clock), tokens, "runplane:host-monitor", ttl_ms=600_000),
        beats=beats,
        hooks=hooks,
    )
    host_id = f"agent-{uuid.uuid4().hex[:8]}"
    details = HostDetails(host_id, labels={"zone": "a"}, drivers=("process",))

    await beats.beat(details, 30)
    await monitor.check_once()
    host = await registry.get(host_id)
    assert (host.status, host.labels, host.last_heartbeat_at) == (
        HostStatus.UP,
        {"zone": "a"},
        clock.now(),
    )

    await client.delete(host_beat_key(host_id))  # the beat expired: the agent is gone
    clock.advance(DOWN_AFTER_S + 1)
    [down] = await monitor.check_once()
    assert (down.host_id, down.status) == (host_id, HostStatus.DOWN)
    assert hooks.calls == [("on_down", host_id, HostStatus.DOWN)]

    hooks.allow_up = False  # what moved away is not stopped yet
    await beats.beat(details, 30)
    await monitor.check_once()
    assert (await registry.get(host_id)).status is HostStatus.DOWN
    hooks.allow_up = True
    await monitor.check_once()
    assert (await registry.get(host_id)).status is HostStatus.UP
    assert [c[0] for c in hooks.calls] == ["on_down", "before_up", "before_up"]
    await client.delete(host_beat_key(host_id))


async def test_one_seat_per_host_and_a_lost_seat_stops_the_presence(
    client: redis.asyncio.Redis,
) -> None:
    leases = RedisLeaseStore(client)
    host_id = f"agent-{uuid.uuid4().hex[:8]}"
    name = host_agent_lease(host_id)
    assert lease_key(name) == "lease:{runplane:host-agent:" + host_id + "}"
    first = HostSeat(leases, name, host_id, "a" * 32, ttl_ms=60_000)
    second = HostSeat(leases, name, host_id, "b" * 32, ttl_ms=60_000)
    assert await first.claim(wait_ms=0)
    assert not await second.claim(wait_ms=300)
    # The same token (an agent restarted on its data dir) takes it back at once.
    assert await HostSeat(leases, name, host_id, "a" * 32, ttl_ms=60_000).claim(wait_ms=0)

    announced: list[str] = []
    lost: list[str] = []

    async def announce() -> None:
        announced.append("beat")

    presence = HostPresence(first, announce, lambda: lost.append("lost"), interval_s=60)
    await presence.once()
    assert (announced, lost, presence.lost) == (["beat"], [], False)

    await client.delete(lease_key(name))  # the seat expired, and another took it
    assert await second.claim(wait_ms=0)
    await presence.once()
    assert (announced, lost, presence.lost) == (["beat"], ["lost"], True)
    await first.release()  # not its seat any more: nothing is deleted
    assert await client.get(lease_key(name)) == b"b" * 32
    await second.release()
    assert not await client.exists(lease_key(name))
