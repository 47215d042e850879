"""RateLimiter contract: the in-memory fake and Redis's GCRA script answer alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.names import rate_limit_key
from runplane.adapters.redis.rate_limits import RedisRateLimiter
from runplane.domain.errors import StoreUnavailable
from runplane.ports.rate_limits import RateLimiter
from runplane.testing.rate_limits import InMemoryRateLimiter
from tests.support.clock import FakeClock
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget

PER_S = 5.0
"""One token every 200 ms: long enough that a loaded box does not refill one
between two calls of a test, short enough to wait for one in real time."""

SLOW_PER_S = 0.2
"""One token every 5 s, for the tests that never wait for one."""


@dataclass(frozen=True, slots=True)
class Backend:
    limiter: RateLimiter
    elapse: Callable[[float], Awaitable[None]]


@pytest.fixture
def bucket() -> str:
    return f"key-{uuid.uuid4().hex[:12]}"


class RateLimiterContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    async def test_a_full_bucket_allows_its_burst_then_refuses(
        self, backend: Backend, bucket: str
    ) -> None:
        taken = [await backend.limiter.take(bucket, SLOW_PER_S, 3) for _ in range(3)]
        refused = await backend.limiter.take(bucket, SLOW_PER_S, 3)
        assert taken == [0.0, 0.0, 0.0]
        assert 0 < refused <= 1 / SLOW_PER_S

    async def test_buckets_are_independent(self, backend: Backend, bucket: str) -> None:
        assert await backend.limiter.take(bucket, SLOW_PER_S, 1) == 0.0
        assert await backend.limiter.take(bucket, SLOW_PER_S, 1) > 0
        assert await backend.limiter.take(bucket + "-other", SLOW_PER_S, 1) == 0.0

    async def test_a_token_is_back_after_the_wait_it_announced(
        self, backend: Backend, bucket: str
    ) -> None:
        assert await backend.limiter.take(bucket, PER_S, 1) == 0.0
        wait_s = await backend.limiter.take(bucket, PER_S, 1)
        assert wait_s > 0
        await backend.elapse(wait_s + 0.01)
        assert await backend.limiter.take(bucket, PER_S, 1) == 0.0

    async def test_a_refused_call_takes_nothing(self, backend: Backend, bucket: str) -> None:
        assert await backend.limiter.take(bucket, PER_S, 1) == 0.0
        for _ in range(5):
            assert await backend.limiter.take(bucket, PER_S, 1) > 0
        await backend.elapse(1 / PER_S + 0.01)
        # Only one interval has passed: the refusals did not push the next token back.
        assert await backend.limiter.take(bucket, PER_S, 1) == 0.0

    async def test_concurrent_callers_share_exactly_the_burst(
        self, backend: Backend, bucket: str
    ) -> None:
        waits = await asyncio.gather(*(backend.limiter.take(bucket, 0.5, 10) for _ in range(40)))
        assert waits.count(0.0) == 10
        assert all(w > 0 for w in waits if w != 0.0)

    @pytest.mark.parametrize(("per_s", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
    async def test_a_rate_that_allows_nothing_is_rejected(
        self, backend: Backend, bucket: str, per_s: float, burst: int
    ) -> None:
        with pytest.raises(ValueError, match="per_s"):
            await backend.limiter.take(bucket, per_s, burst)


class TestInMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def backend(self) -> Backend:
        clock = FakeClock()

        async def elapse(seconds: float) -> None:
            clock.advance(seconds)

        return Backend(InMemoryRateLimiter(clock), elapse)


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> Backend:
        return Backend(RedisRateLimiter(client), asyncio.sleep)

    async def test_the_budget_is_one_hash_tagged_key_that_expires(
        self, client: redis.asyncio.Redis, bucket: str
    ) -> None:
        await RedisRateLimiter(client).take(bucket, PER_S, 2)
        assert rate_limit_key(bucket) == f"runplane:ratelimit:{{{bucket}}}"
        # Full again 200 ms after one take; the key outlives that by a second at most.
        assert 0 < await client.pttl(rate_limit_key(bucket)) <= 1_200

    async def test_two_clients_share_one_budget(
        self, redis_target: RedisTarget, client: redis.asyncio.Redis, bucket: str
    ) -> None:
        other = redis_target.connect()
        try:
            # Both clients connected first: a cluster client's first command
            # loads the slot map and the command table, long enough on a
            # loaded box to refill a token of PER_S between two takes.
            await client.ping()
            await other.ping()
            first, second = RedisRateLimiter(client), RedisRateLimiter(other)
            assert await first.take(bucket, SLOW_PER_S, 2) == 0.0
            assert await second.take(bucket, SLOW_PER_S, 2) == 0.0
            assert await first.take(bucket, SLOW_PER_S, 2) > 0
            assert await second.take(bucket, SLOW_PER_S, 2) > 0
        finally:
            await other.aclose()

    async def test_scripts_reload_after_a_script_cache_flush(
        self, client: redis.asyncio.Redis, bucket: str
    ) -> None:
        limiter = RedisRateLimiter(client)
        assert await limiter.take(bucket, PER_S, 2) == 0.0
        await client.script_flush()  # what a Redis restart does to the cache
        assert await limiter.take(bucket, PER_S, 2) == 0.0
        assert await limiter.take(bucket, PER_S, 2) > 0

    async def test_unreachable_redis_raises_store_unavailable(self, bucket: str) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisRateLimiter(client).take(bucket, PER_S, 2)
        finally:
            await client.aclose()
