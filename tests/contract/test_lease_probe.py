"""LeaseProbe contract: the in-memory fake and Redis see a runtime's lease alike,
whoever holds it, for as long as it lasts, without taking it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.leases import RedisLeaseProbe, RedisLeaseStore
from runplane.domain.errors import StoreUnavailable
from runplane.ports.leases import LeaseProbe, LeaseStore
from runplane.testing.leases import InMemoryLeaseProbe, InMemoryLeaseStore
from tests.support.clock import FakeClock
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget

TTL_MS = 300


@dataclass(frozen=True, slots=True)
class ProbeBackend:
    probe: LeaseProbe
    leases: LeaseStore
    """The leases the probe looks at."""
    elapse: Callable[[float], Awaitable[None]]


@pytest.fixture
def runtime_id() -> str:
    return f"rt-{uuid.uuid4().hex[:12]}"


class LeaseProbeContract:
    """Every LeaseProbe backend passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> ProbeBackend:
        raise NotImplementedError

    async def test_a_free_lease_is_not_held(self, backend: ProbeBackend, runtime_id: str) -> None:
        assert not await backend.probe.is_held(runtime_id)

    async def test_a_taken_lease_is_held_until_released(
        self, backend: ProbeBackend, runtime_id: str
    ) -> None:
        await backend.leases.try_acquire(runtime_id, "token-a", TTL_MS)
        assert await backend.probe.is_held(runtime_id)
        assert not await backend.probe.is_held(runtime_id + "-other")

        await backend.leases.release(runtime_id, "token-a")
        assert not await backend.probe.is_held(runtime_id)

    async def test_looking_takes_nothing(self, backend: ProbeBackend, runtime_id: str) -> None:
        assert not await backend.probe.is_held(runtime_id)

        assert await backend.leases.try_acquire(runtime_id, "token-a", TTL_MS)
        assert await backend.probe.is_held(runtime_id)
        assert await backend.leases.release(runtime_id, "token-a")

    async def test_an_expired_lease_is_not_held(
        self, backend: ProbeBackend, runtime_id: str
    ) -> None:
        await backend.leases.try_acquire(runtime_id, "token-a", TTL_MS)

        await backend.elapse(0.4)

        assert not await backend.probe.is_held(runtime_id)


class TestInMemoryLeaseProbe(LeaseProbeContract):
    @pytest.fixture
    def backend(self) -> ProbeBackend:
        clock = FakeClock()
        leases = InMemoryLeaseStore(clock)

        async def elapse(seconds: float) -> None:
            clock.advance(seconds)

        return ProbeBackend(InMemoryLeaseProbe(leases), leases, elapse)


class TestRedisLeaseProbe(LeaseProbeContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> ProbeBackend:
        return ProbeBackend(RedisLeaseProbe(client), RedisLeaseStore(client), asyncio.sleep)

    async def test_unreachable_redis_raises_store_unavailable(self, runtime_id: str) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisLeaseProbe(client).is_held(runtime_id)
        finally:
            await client.aclose()
