"""SnapshotPublisher contract: the in-memory fake and Redis put runtime snapshots
on `runtime:snapshots` alike: every one, in order, as DESIGN §4's flat fields."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.health import RedisSnapshotPublisher
from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.reactions import RuntimeSnapshot
from runplane.ports.health import SnapshotPublisher
from runplane.testing.health import InMemorySnapshotPublisher
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget
from tests.support.streams import unique

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SnapshotBackend:
    publisher: SnapshotPublisher
    published: Callable[[], Awaitable[list[dict[str, str]]]]
    """The fields of every entry on the snapshots stream, oldest first."""


class SnapshotPublisherContract:
    """Every SnapshotPublisher passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> SnapshotBackend:
        raise NotImplementedError

    async def test_snapshots_land_in_order_as_flat_fields(self, backend: SnapshotBackend) -> None:
        await backend.publisher.publish(RuntimeSnapshot("rt-1", "running", "healthy", T0))
        await backend.publisher.publish(
            RuntimeSnapshot("rt-2", "engine_unreachable", "exited", T0 + timedelta(seconds=1))
        )

        assert await backend.published() == [
            {
                "runtime_id": "rt-1",
                "status": "running",
                "engine_health": "healthy",
                "occurred_at_ms": "1893553445678",
            },
            {
                "runtime_id": "rt-2",
                "status": "engine_unreachable",
                "engine_health": "exited",
                "occurred_at_ms": "1893553446678",
            },
        ]

    async def test_the_time_is_milliseconds_whatever_the_zone(
        self, backend: SnapshotBackend
    ) -> None:
        elsewhere = T0.astimezone(timezone(timedelta(hours=-7)))

        await backend.publisher.publish(RuntimeSnapshot("rt-1", "running", "", elsewhere))

        [fields] = await backend.published()
        assert (fields["occurred_at_ms"], fields["engine_health"]) == ("1893553445678", "")

    async def test_a_repeated_snapshot_is_published_again(self, backend: SnapshotBackend) -> None:
        snapshot = RuntimeSnapshot("rt-1", "running", "healthy", T0)

        await backend.publisher.publish(snapshot)
        await backend.publisher.publish(snapshot)

        assert await backend.published() == [snapshot.as_fields()] * 2

    async def test_many_land_in_order_and_none_is_nothing(self, backend: SnapshotBackend) -> None:
        many = [RuntimeSnapshot(f"rt-{n}", "running", "healthy", T0) for n in range(5)]

        await backend.publisher.publish_many([])
        await backend.publisher.publish_many(many)

        assert await backend.published() == [snapshot.as_fields() for snapshot in many]


class TestInMemorySnapshotPublisher(SnapshotPublisherContract):
    @pytest.fixture
    def backend(self) -> SnapshotBackend:
        publisher = InMemorySnapshotPublisher()

        async def published() -> list[dict[str, str]]:
            return [snapshot.as_fields() for snapshot in publisher.snapshots]

        return SnapshotBackend(publisher, published)


class TestRedisSnapshotPublisher(SnapshotPublisherContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> SnapshotBackend:
        stream = unique("snapshots")

        async def published() -> list[dict[str, str]]:
            entries: Any = await client.xrange(stream)
            return [dict(fields) for _, fields in entries]

        return SnapshotBackend(RedisSnapshotPublisher(client, stream=stream), published)

    async def test_unreachable_redis_raises_store_unavailable(self) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisSnapshotPublisher(client).publish(
                    RuntimeSnapshot("rt-1", "running", "healthy", T0)
                )
        finally:
            await client.aclose()
