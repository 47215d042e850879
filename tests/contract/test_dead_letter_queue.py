"""DeadLetterQueue contract: the in-memory fake and Redis list, replay and drop
dead letters alike, as a consumer writes them (DESIGN §4 `runtime:dead_letters`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.dead_letter_queue import RedisDeadLetterQueue
from runplane.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterUnreplayable,
    dead_letter_fields,
)
from runplane.domain.errors import StoreUnavailable
from runplane.domain.event_reading import is_stream_id
from runplane.ports.streams import DeadLetterQueue
from runplane.testing.job_streams import InMemoryDeadLetterQueue, InMemoryStreams
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget
from tests.support.streams import unique

Entries = list[tuple[str, dict[str, str]]]


@dataclass(frozen=True, slots=True)
class DeadLetterBackend:
    queue: DeadLetterQueue
    add: Callable[[dict[str, str]], Awaitable[str]]
    """XADD these fields to the dead-letter stream; the dead letter's id."""
    entries: Callable[[str], Awaitable[Entries]]
    """A stream's entries, oldest first."""

    async def bury(self, stream: str, fields: dict[str, str], error: str = "boom") -> str:
        """Dead-letter an entry of `stream`, as a consumer does past its cap."""
        return await self.add(dead_letter_fields(stream, "1700000000000-3", fields, error, 5))


@pytest.fixture
def jobs() -> str:
    """The stream the dead letters came from (and go back to)."""
    return unique("jobs")


class DeadLetterQueueContract:
    """Every DeadLetterQueue backend passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> DeadLetterBackend:
        raise NotImplementedError

    async def test_an_empty_queue_lists_nothing(self, backend: DeadLetterBackend) -> None:
        assert await backend.queue.list() == []

    async def test_dead_letters_are_listed_oldest_first(
        self, backend: DeadLetterBackend, jobs: str
    ) -> None:
        first = await backend.bury(jobs, {"runtime_id": "rt-1", "spec": '{"a": [1]}'}, "RetryLater")
        second = await backend.bury(jobs, {"runtime_id": "rt-2"}, "x" * 5000)

        letters = await backend.queue.list()

        assert letters == [
            DeadLetter(
                first,
                jobs,
                "1700000000000-3",
                {"runtime_id": "rt-1", "spec": '{"a": [1]}'},
                "RetryLater",
                5,
            ),
            DeadLetter(second, jobs, "1700000000000-3", {"runtime_id": "rt-2"}, "x" * 2000, 5),
        ]

    async def test_pages_go_on_after_the_last_id(
        self, backend: DeadLetterBackend, jobs: str
    ) -> None:
        ids = [await backend.bury(jobs, {"runtime_id": f"rt-{n}"}) for n in range(5)]

        first = await backend.queue.list(count=2)
        second = await backend.queue.list(after=first[-1].id, count=2)
        third = await backend.queue.list(after=second[-1].id, count=2)
        beyond = await backend.queue.list(after=third[-1].id, count=2)

        assert [[letter.id for letter in page] for page in (first, second, third, beyond)] == [
            ids[0:2],
            ids[2:4],
            ids[4:],
            [],
        ]

    async def test_replay_puts_the_fields_back_on_their_stream_and_the_letter_away(
        self, backend: DeadLetterBackend, jobs: str
    ) -> None:
        await backend.add({"stream": jobs, "fields": '{"runtime_id": "rt-0"}'})  # already there
        letter = await backend.bury(jobs, {"runtime_id": "rt-1", "job_id": "job-1"})
        kept = await backend.bury(jobs, {"runtime_id": "rt-2"})
        before = await backend.entries(jobs)

        new_id = await backend.queue.replay(letter)

        assert is_stream_id(new_id)
        assert await backend.entries(jobs) == [
            *before,
            (new_id, {"runtime_id": "rt-1", "job_id": "job-1"}),
        ]
        assert [dead.id for dead in await backend.queue.list()][1:] == [kept]
        with pytest.raises(DeadLetterNotFound):
            await backend.queue.replay(letter)

    @pytest.mark.parametrize("missing", ["1-1", "nope"], ids=["unknown", "not-an-entry-id"])
    async def test_replaying_what_is_not_there_is_dead_letter_not_found(
        self, backend: DeadLetterBackend, jobs: str, missing: str
    ) -> None:
        await backend.bury(jobs, {"runtime_id": "rt-1"})

        with pytest.raises(DeadLetterNotFound) as raised:
            await backend.queue.replay(missing)

        assert raised.value.dead_letter_id == missing
        assert len(await backend.queue.list()) == 1

    @pytest.mark.parametrize(
        "fields",
        [
            {"fields": '{"runtime_id": "rt-1"}'},
            {"stream": "jobs", "fields": "{}"},
            {"stream": "runplane:events", "fields": '{"event": "{}"}'},
        ],
        ids=["no-stream", "no-fields", "a-lifecycle-event"],
    )
    async def test_a_letter_without_stream_or_fields_is_unreplayable_and_kept(
        self, backend: DeadLetterBackend, fields: dict[str, str]
    ) -> None:
        letter = await backend.add(fields)

        with pytest.raises(DeadLetterUnreplayable):
            await backend.queue.replay(letter)

        assert [dead.id for dead in await backend.queue.list()] == [letter]

    async def test_a_malformed_letter_is_listed_with_empty_parts(
        self, backend: DeadLetterBackend
    ) -> None:
        letter = await backend.add({"fields": "{not json", "deliveries": "many", "other": "x"})
        listed_list = await backend.add({"stream": "s", "fields": "[1, 2]", "deliveries": "2"})

        assert await backend.queue.list() == [
            DeadLetter(letter, "", "", {}, "", 0),
            DeadLetter(listed_list, "s", "", {}, "", 2),
        ]

    async def test_drop_removes_one_letter(self, backend: DeadLetterBackend, jobs: str) -> None:
        dropped = await backend.bury(jobs, {"runtime_id": "rt-1"})
        kept = await backend.bury(jobs, {"runtime_id": "rt-2"})

        assert await backend.queue.drop(dropped)
        assert not await backend.queue.drop(dropped)
        assert not await backend.queue.drop("nope")
        assert [dead.id for dead in await backend.queue.list()] == [kept]
        assert await backend.entries(jobs) == []


class TestInMemoryDeadLetterQueue(DeadLetterQueueContract):
    @pytest.fixture
    def backend(self) -> DeadLetterBackend:
        streams = InMemoryStreams()
        queue = InMemoryDeadLetterQueue(streams, stream="dead")

        async def add(fields: dict[str, str]) -> str:
            return streams.add("dead", fields)

        async def entries(stream: str) -> Entries:
            return streams.entries(stream)

        return DeadLetterBackend(queue, add, entries)

    async def test_bury_writes_what_a_consumer_writes(self) -> None:
        streams = InMemoryStreams()
        queue = InMemoryDeadLetterQueue(streams)
        fields = {"runtime_id": "rt-1"}

        letter = queue.bury("runtime:stop_jobs", "5-1", fields, "RetryLater: down", 6)

        assert streams.entries("runtime:dead_letters") == [
            (letter, dead_letter_fields("runtime:stop_jobs", "5-1", fields, "RetryLater: down", 6))
        ]


class TestRedisDeadLetterQueue(DeadLetterQueueContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> DeadLetterBackend:
        dead = unique("dead")

        async def add(fields: dict[str, str]) -> str:
            return str(await client.xadd(dead, fields))  # type: ignore[arg-type]

        async def entries(stream: str) -> Entries:
            found: Any = await client.xrange(stream)
            return [(entry_id, dict(fields)) for entry_id, fields in found]

        return DeadLetterBackend(RedisDeadLetterQueue(client, stream=dead), add, entries)

    async def test_unreachable_redis_raises_store_unavailable(self) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        queue = RedisDeadLetterQueue(client)
        try:
            with pytest.raises(StoreUnavailable):
                await queue.list()
            with pytest.raises(StoreUnavailable):
                await queue.replay("1-1")
            with pytest.raises(StoreUnavailable):
                await queue.drop("1-1")
        finally:
            await client.aclose()
