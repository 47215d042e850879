"""HealthEventPublisher and HealthEventReader contract: `runtime:health_events`,
written by the publisher and looked back over by the reader, in memory and on a
real redis-server alike: a runtime's events newest first, as the stream's flat
fields carry them (milliseconds, JSON details), and what cannot be read passed
over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.health import RedisHealthEventPublisher, RedisHealthEventReader
from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.ports.health import HealthEventPublisher, HealthEventReader
from runplane.testing.health import InMemoryHealthEventReader, InMemoryHealthEvents
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget
from tests.support.streams import unique

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
"""Microseconds on purpose: the stream carries whole milliseconds."""
E = HealthEventType


@dataclass(frozen=True, slots=True)
class HealthStream:
    publisher: HealthEventPublisher
    reader: HealthEventReader


def health_event(
    runtime_id: str = "rt-1",
    kind: HealthEventType = E.PROBE_FAILED,
    at_s: float = 0,
    **changes: Any,
) -> HealthEvent:
    values: dict[str, Any] = {
        "runtime_id": runtime_id,
        "container_id": "c-1",
        "event_type": kind,
        "occurred_at": T0 + timedelta(seconds=at_s),
        "details": {"detail": "HTTP 503", "failures": 3},
    }
    values.update(changes)
    return HealthEvent(**values)


def as_read(event: HealthEvent) -> HealthEvent:
    """`event` as the stream gives it back: its time cut to the millisecond."""
    at = event.occurred_at
    return HealthEvent(
        event.runtime_id,
        event.container_id,
        event.event_type,
        at.replace(microsecond=at.microsecond // 1000 * 1000),
        event.details,
    )


class HealthEventStreamContract:
    """Every publisher + reader pair passes these; a subclass provides `stream`."""

    @pytest.fixture
    def stream(self) -> HealthStream:
        raise NotImplementedError

    async def test_recent_is_the_runtimes_own_events_newest_first(
        self, stream: HealthStream
    ) -> None:
        kinds = [E.CONTAINER_STARTED, E.PROBE_FAILED, E.PROBE_RECOVERED]
        mine = [health_event("rt-1", kind, n, details={"n": n}) for n, kind in enumerate(kinds)]
        for n, event in enumerate(mine):
            await stream.publisher.publish(event)
            await stream.publisher.publish(health_event("rt-2", E.CONTAINER_EXITED, n))

        assert await stream.reader.recent("rt-1") == [as_read(e) for e in reversed(mine)]
        assert len(await stream.reader.recent("rt-2")) == 3
        assert await stream.reader.recent("rt-3") == []

    async def test_recent_answers_at_most_limit_events(self, stream: HealthStream) -> None:
        for n in range(5):
            await stream.publisher.publish(health_event(at_s=n, details={"n": n}))

        recent = await stream.reader.recent("rt-1", limit=2)

        assert [e.details["n"] for e in recent] == [4, 3]

    async def test_an_event_reads_back_as_the_stream_carries_it(self, stream: HealthStream) -> None:
        published = health_event(
            kind=E.CONTAINER_EXITED,
            details={"exit_code": 137, "signal": 9, "nested": {"list": [1, "two", None]}},
        )

        await stream.publisher.publish(published)

        [read] = await stream.reader.recent("rt-1")
        assert read == as_read(published)
        assert read.occurred_at == datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        assert read.occurred_at.utcoffset() == timedelta(0)
        assert read.event_type is E.CONTAINER_EXITED

    async def test_what_a_reader_hands_out_is_a_copy(self, stream: HealthStream) -> None:
        await stream.publisher.publish(health_event(details={"tags": ["a"]}))

        [first] = await stream.reader.recent("rt-1")
        first.details["tags"].append("changed by a reader")

        [again] = await stream.reader.recent("rt-1")
        assert again.details == {"tags": ["a"]}

    async def test_an_event_with_a_malformed_runtime_id_is_passed_over(
        self, stream: HealthStream
    ) -> None:
        await stream.publisher.publish(health_event("not a runtime id!"))
        await stream.publisher.publish(health_event("rt-1"))

        assert await stream.reader.recent("not a runtime id!") == []
        assert len(await stream.reader.recent("rt-1")) == 1

    async def test_details_the_stream_cannot_carry_are_refused(self, stream: HealthStream) -> None:
        with pytest.raises(TypeError):
            await stream.publisher.publish(health_event(details={"at": T0}))

        assert await stream.reader.recent("rt-1") == []


class TestInMemoryHealthEventStream(HealthEventStreamContract):
    @pytest.fixture
    def stream(self) -> HealthStream:
        events = InMemoryHealthEvents()
        return HealthStream(events, InMemoryHealthEventReader(events))


class TestRedisHealthEventStream(HealthEventStreamContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def name(self) -> str:
        return unique("health")

    @pytest.fixture
    def stream(self, client: redis.asyncio.Redis, name: str) -> HealthStream:
        return HealthStream(
            RedisHealthEventPublisher(client, stream=name),
            RedisHealthEventReader(client, stream=name),
        )

    async def test_entries_that_do_not_decode_are_passed_over(
        self, stream: HealthStream, client: redis.asyncio.Redis, name: str
    ) -> None:
        good = health_event(details={})
        await stream.publisher.publish(good)
        fields = good.as_fields()
        for broken in (
            {"event_type": "from_a_newer_producer"},
            {"occurred_at_ms": "yesterday"},
            {"occurred_at_ms": "0"},
            {"details": "{not json"},
            {"details": "[1]"},
        ):
            await client.xadd(name, {**fields, **broken})  # type: ignore[arg-type]

        assert await stream.reader.recent("rt-1") == [as_read(good)]

    async def test_the_look_back_is_bounded(self, client: redis.asyncio.Redis, name: str) -> None:
        publisher = RedisHealthEventPublisher(client, stream=name)
        await publisher.publish(health_event("rt-old"))
        for n in range(5):
            await publisher.publish(health_event("rt-busy", at_s=n))

        reader = RedisHealthEventReader(client, stream=name, look_back=5)

        assert await reader.recent("rt-old") == []
        assert len(await reader.recent("rt-busy")) == 5

    async def test_unreachable_redis_raises_store_unavailable(self) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisHealthEventPublisher(client).publish(health_event())
            with pytest.raises(StoreUnavailable):
                await RedisHealthEventReader(client).recent("rt-1")
        finally:
            await client.aclose()
