"""Managing the dead-letter stream: list, replay (back onto its stream, then
gone from the dead letters) and drop, with either kind of client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.redis.client import connect, connect_bytes
from runplane.adapters.redis.dead_letter_queue import RedisDeadLetterQueue
from runplane.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterUnreplayable,
    dead_letter_fields,
)
from tests.support.redis import RedisServer
from tests.support.streams import unique


@pytest_asyncio.fixture(loop_scope="session", params=["bytes", "text"])
async def client(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> AsyncIterator[redis.asyncio.Redis]:
    client = (
        connect_bytes(redis_server.url) if request.param == "bytes" else connect(redis_server.url)
    )
    yield client
    await client.aclose()


async def bury(
    client: redis.asyncio.Redis, dead_letters: str, stream: str, fields: dict[str, str]
) -> str:
    letter = dead_letter_fields(stream, "1-1", fields, "RetryLater: down", 5)
    letter_id = await client.xadd(dead_letters, letter)  # type: ignore[arg-type]
    return letter_id.decode() if isinstance(letter_id, bytes) else str(letter_id)


async def test_dead_letters_are_listed_oldest_first_and_paged(
    client: redis.asyncio.Redis,
) -> None:
    dead_letters = unique("dead")
    first = await bury(client, dead_letters, "runtime:start_jobs", {"runtime_id": "rt-1"})
    second = await bury(client, dead_letters, "runtime:stop_jobs", {"runtime_id": "rt-2"})

    letters = await RedisDeadLetterQueue(client, dead_letters).list()

    assert letters == [
        DeadLetter(
            first, "runtime:start_jobs", "1-1", {"runtime_id": "rt-1"}, "RetryLater: down", 5
        ),
        DeadLetter(
            second, "runtime:stop_jobs", "1-1", {"runtime_id": "rt-2"}, "RetryLater: down", 5
        ),
    ]
    page = await RedisDeadLetterQueue(client, dead_letters).list(after=first, count=10)
    assert [letter.id for letter in page] == [second]


async def test_replay_adds_the_fields_back_and_removes_the_dead_letter(
    client: redis.asyncio.Redis,
) -> None:
    dead_letters, stream = unique("dead"), unique("jobs")
    fields = {"runtime_id": "rt-1", "job_id": "j-1", "spec": json.dumps({"image": "x"})}
    letter_id = await bury(client, dead_letters, stream, fields)

    new_id = await RedisDeadLetterQueue(client, dead_letters).replay(letter_id)

    [(entry_id, replayed)] = await client.xrange(stream)
    assert (entry_id.decode() if isinstance(entry_id, bytes) else entry_id) == new_id
    assert {_text(k): _text(v) for k, v in replayed.items()} == fields
    assert await client.xlen(dead_letters) == 0


async def test_drop_removes_one_dead_letter(client: redis.asyncio.Redis) -> None:
    dead_letters = unique("dead")
    keep = await bury(client, dead_letters, "s", {"runtime_id": "rt-1"})
    drop = await bury(client, dead_letters, "s", {"runtime_id": "rt-2"})

    assert await RedisDeadLetterQueue(client, dead_letters).drop(drop)
    assert not await RedisDeadLetterQueue(client, dead_letters).drop(drop)
    assert [x.id for x in await RedisDeadLetterQueue(client, dead_letters).list()] == [keep]


async def test_replaying_what_is_not_there_or_is_broken_fails_clearly(
    client: redis.asyncio.Redis,
) -> None:
    dead_letters = unique("dead")
    with pytest.raises(DeadLetterNotFound):
        await RedisDeadLetterQueue(client, dead_letters).replay("1-1")
    broken = await client.xadd(dead_letters, {"stream": "s", "fields": "not json"})
    broken_id = broken.decode() if isinstance(broken, bytes) else str(broken)

    [letter] = await RedisDeadLetterQueue(client, dead_letters).list()
    assert letter.fields == {}
    assert letter.deliveries == 0
    with pytest.raises(DeadLetterUnreplayable, match="no fields"):
        await RedisDeadLetterQueue(client, dead_letters).replay(broken_id)
    assert await client.xlen(dead_letters) == 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
