"""OffsetStore contract: the in-memory fake and Redis keep positions alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.names import offsets_key
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.domain.errors import StoreUnavailable
from runplane.ports.streams import OffsetStore
from runplane.testing.leases import InMemoryOffsetStore
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget

STREAM = "runplane:events"


@pytest.fixture
def consumer() -> str:
    return f"consumer-{uuid.uuid4().hex[:12]}"


class OffsetStoreContract:
    """Every OffsetStore backend passes these; a subclass provides `store`."""

    @pytest.fixture
    def store(self) -> OffsetStore:
        raise NotImplementedError

    async def test_unknown_position_is_none(self, store: OffsetStore, consumer: str) -> None:
        assert await store.load(consumer, STREAM) is None

    async def test_saved_position_loads_back(self, store: OffsetStore, consumer: str) -> None:
        await store.save(consumer, STREAM, "1700000000000-0")
        assert await store.load(consumer, STREAM) == "1700000000000-0"

    async def test_save_overwrites(self, store: OffsetStore, consumer: str) -> None:
        await store.save(consumer, STREAM, "1-0")
        await store.save(consumer, STREAM, "2-5")
        assert await store.load(consumer, STREAM) == "2-5"

    async def test_consumers_are_separate(self, store: OffsetStore, consumer: str) -> None:
        other = consumer + "-other"
        await store.save(consumer, STREAM, "1-0")
        assert await store.load(other, STREAM) is None
        await store.save(other, STREAM, "9-0")
        assert await store.load(consumer, STREAM) == "1-0"
        assert await store.load(other, STREAM) == "9-0"

    async def test_streams_are_separate(self, store: OffsetStore, consumer: str) -> None:
        await store.save(consumer, STREAM, "1-0")
        await store.save(consumer, "runtime:health_events", "2-0")
        assert await store.load(consumer, STREAM) == "1-0"
        assert await store.load(consumer, "runtime:health_events") == "2-0"
        assert await store.load(consumer, "runtime:snapshots") is None


class TestInMemoryOffsetStore(OffsetStoreContract):
    @pytest.fixture
    def store(self) -> OffsetStore:
        return InMemoryOffsetStore()


class TestRedisOffsetStore(OffsetStoreContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def store(self, client: redis.asyncio.Redis) -> OffsetStore:
        return RedisOffsetStore(client)

    async def test_positions_live_in_one_hash_per_consumer(
        self, client: redis.asyncio.Redis, consumer: str
    ) -> None:
        await RedisOffsetStore(client).save(consumer, STREAM, "3-1")
        assert offsets_key(consumer) == f"runplane:offsets:{{{consumer}}}"
        assert await client.hgetall(offsets_key(consumer)) == {STREAM: "3-1"}

    async def test_unreachable_redis_raises_store_unavailable(self, consumer: str) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        store = RedisOffsetStore(client)
        try:
            with pytest.raises(StoreUnavailable):
                await store.load(consumer, STREAM)
            with pytest.raises(StoreUnavailable):
                await store.save(consumer, STREAM, "1-0")
        finally:
            await client.aclose()
