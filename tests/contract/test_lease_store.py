"""LeaseStore contract: the in-memory fake and Redis answer every question alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio

from runplane.adapters.redis.client import MAX_CONNECTIONS, connect
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import lease_key
from runplane.domain.errors import StoreUnavailable
from runplane.ports.leases import LeaseStore
from runplane.testing.leases import InMemoryLeaseStore
from tests.support.clock import FakeClock
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget

TTL_MS = 300
"""Short enough for real-time Redis tests, long enough for a loaded 2-core box."""


@dataclass(frozen=True, slots=True)
class LeaseBackend:
    store: LeaseStore
    elapse: Callable[[float], Awaitable[None]]
    """Let `seconds` pass as the store sees time: a fake clock, or a real sleep."""


@pytest.fixture
def runtime_id() -> str:
    return f"rt-{uuid.uuid4().hex[:12]}"


class LeaseStoreContract:
    """Every LeaseStore backend passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> LeaseBackend:
        raise NotImplementedError

    async def test_first_acquire_wins(self, backend: LeaseBackend, runtime_id: str) -> None:
        assert await backend.store.try_acquire(runtime_id, "a", TTL_MS)

    async def test_second_acquire_fails_while_held(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        assert await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        assert not await backend.store.try_acquire(runtime_id, "b", TTL_MS)
        assert not await backend.store.try_acquire(runtime_id, "a", TTL_MS)  # not re-entrant

    async def test_leases_are_per_runtime(self, backend: LeaseBackend, runtime_id: str) -> None:
        assert await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        assert await backend.store.try_acquire(runtime_id + "-other", "b", TTL_MS)

    async def test_release_by_wrong_token_is_refused(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        assert not await backend.store.release(runtime_id, "b")
        assert not await backend.store.try_acquire(runtime_id, "c", TTL_MS)

    async def test_release_by_holder_frees_it(self, backend: LeaseBackend, runtime_id: str) -> None:
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        assert await backend.store.release(runtime_id, "a")
        assert not await backend.store.release(runtime_id, "a")
        assert await backend.store.try_acquire(runtime_id, "b", TTL_MS)

    async def test_release_of_free_lease_is_refused(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        assert not await backend.store.release(runtime_id, "a")

    async def test_renew_extends_for_the_holder(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        await backend.elapse(0.1)
        assert await backend.store.renew(runtime_id, "a", 1000)
        await backend.elapse(0.35)  # past the first ttl, within the renewed one
        assert not await backend.store.try_acquire(runtime_id, "b", TTL_MS)
        assert await backend.store.release(runtime_id, "a")

    async def test_renew_by_another_token_is_refused_and_extends_nothing(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        assert not await backend.store.renew(runtime_id, "b", 5000)
        await backend.elapse(0.4)
        assert await backend.store.try_acquire(runtime_id, "b", TTL_MS)

    async def test_lease_expires_after_ttl(self, backend: LeaseBackend, runtime_id: str) -> None:
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        await backend.elapse(0.4)
        assert not await backend.store.renew(runtime_id, "a", TTL_MS)
        assert await backend.store.try_acquire(runtime_id, "b", TTL_MS)
        assert not await backend.store.release(runtime_id, "a")  # b holds it now
        assert await backend.store.release(runtime_id, "b")

    async def test_concurrent_acquirers_exactly_one_wins(
        self, backend: LeaseBackend, runtime_id: str
    ) -> None:
        tokens = [f"t{i}" for i in range(50)]
        won = await asyncio.gather(
            *(backend.store.try_acquire(runtime_id, token, 5000) for token in tokens)
        )
        assert won.count(True) == 1
        winner = tokens[won.index(True)]
        assert all([not await backend.store.release(runtime_id, t) for t in tokens if t != winner])
        assert await backend.store.release(runtime_id, winner)

    @pytest.mark.parametrize("ttl_ms", [0, -1])
    async def test_non_positive_ttl_is_rejected(
        self, backend: LeaseBackend, runtime_id: str, ttl_ms: int
    ) -> None:
        with pytest.raises(ValueError, match="ttl_ms"):
            await backend.store.try_acquire(runtime_id, "a", ttl_ms)
        await backend.store.try_acquire(runtime_id, "a", TTL_MS)
        with pytest.raises(ValueError, match="ttl_ms"):
            await backend.store.renew(runtime_id, "a", ttl_ms)


class TestInMemoryLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def backend(self, clock: FakeClock) -> LeaseBackend:
        async def elapse(seconds: float) -> None:
            clock.advance(seconds)

        return LeaseBackend(InMemoryLeaseStore(clock), elapse)

    async def test_lease_ends_exactly_at_ttl(self, clock: FakeClock, runtime_id: str) -> None:
        store = InMemoryLeaseStore(clock)
        await store.try_acquire(runtime_id, "a", TTL_MS)
        clock.advance((TTL_MS - 1) / 1000)
        assert store.holder(runtime_id) == "a"
        clock.advance(0.001)
        assert store.holder(runtime_id) is None


class TestRedisLeaseStore(LeaseStoreContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> LeaseBackend:
        return LeaseBackend(RedisLeaseStore(client), asyncio.sleep)

    async def test_lease_is_one_hash_tagged_key_holding_the_token(
        self, client: redis.asyncio.Redis, runtime_id: str
    ) -> None:
        store = RedisLeaseStore(client)
        await store.try_acquire(runtime_id, "a", TTL_MS)
        assert lease_key(runtime_id) == f"lease:{{{runtime_id}}}"
        assert await client.get(lease_key(runtime_id)) == "a"
        assert 0 < await client.pttl(lease_key(runtime_id)) <= TTL_MS

    async def test_scripts_reload_after_a_script_cache_flush(
        self, client: redis.asyncio.Redis, runtime_id: str
    ) -> None:
        store = RedisLeaseStore(client)
        await store.try_acquire(runtime_id, "a", TTL_MS)
        await client.script_flush()  # what a Redis restart does to the cache
        assert await store.renew(runtime_id, "a", TTL_MS)
        assert await store.release(runtime_id, "a")

    async def test_unreachable_redis_raises_store_unavailable(self, runtime_id: str) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        store = RedisLeaseStore(client)
        try:
            with pytest.raises(StoreUnavailable):
                await store.try_acquire(runtime_id, "a", TTL_MS)
            with pytest.raises(StoreUnavailable):
                await store.renew(runtime_id, "a", TTL_MS)
            with pytest.raises(StoreUnavailable):
                await store.release(runtime_id, "a")
        finally:
            await client.aclose()


async def test_many_concurrent_callers_wait_for_a_pooled_connection(
    redis_target: RedisTarget,
) -> None:
    """More callers than the pool holds connections: they queue, none fails."""
    client = redis_target.connect()
    try:
        leases = RedisLeaseStore(client)
        results = await asyncio.gather(
            *(leases.try_acquire(f"crowd-{i}", "t", 5_000) for i in range(MAX_CONNECTIONS * 3))
        )
        assert all(results)
    finally:
        await client.aclose()
