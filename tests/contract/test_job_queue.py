"""JobQueue contract: the in-memory fake and Redis put a submitted job on its
operation's stream alike (DESIGN §4: `runtime:<op>_jobs`, flat string fields)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.jobs import RedisJobQueue
from runplane.adapters.redis.names import JOB_RESULTS_STREAM
from runplane.domain.errors import StoreUnavailable
from runplane.domain.event_reading import is_stream_id, parse_stream_id
from runplane.domain.operations import OpKind
from runplane.ports.streams import RESULT_MATCHES, JobQueue
from runplane.testing.job_streams import InMemoryJobQueue, InMemoryStreams
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget

JOBS_DB = 12
"""The job streams have fixed names: the Redis backend gets a database of its own,
emptied before each test."""

Entries = list[tuple[str, dict[str, str]]]


@dataclass(frozen=True, slots=True)
class JobBackend:
    queue: JobQueue
    entries: Callable[[str], Awaitable[Entries]]
    """A stream's entries, oldest first."""
    add_result: Callable[[dict[str, str]], Awaitable[str]]
    """Append to `runtime:job_results` as a consumer does; the entry id."""


class JobQueueContract:
    """Every JobQueue backend passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> JobBackend:
        raise NotImplementedError

    async def test_a_job_lands_on_its_operations_stream(self, backend: JobBackend) -> None:
        fields = {"runtime_id": "rt-1", "reason": "requested", "job_id": "job-1"}

        stream, entry_id = await backend.queue.submit("stop", fields)

        assert stream == "runtime:stop_jobs"
        assert is_stream_id(entry_id)
        assert await backend.entries(stream) == [(entry_id, fields)]

    async def test_every_operation_has_a_stream_of_its_own(self, backend: JobBackend) -> None:
        submitted = {op: await backend.queue.submit(op, {"runtime_id": op}) for op in OpKind}

        assert {op: stream for op, (stream, _) in submitted.items()} == {
            op: f"runtime:{op}_jobs" for op in OpKind
        }
        for op, (stream, entry_id) in submitted.items():
            assert await backend.entries(stream) == [(entry_id, {"runtime_id": op})]

    async def test_jobs_keep_their_order_on_a_stream(self, backend: JobBackend) -> None:
        submitted = [
            await backend.queue.submit("start", {"runtime_id": f"rt-{n}"}) for n in range(3)
        ]

        entries = await backend.entries("runtime:start_jobs")

        assert [entry_id for entry_id, _ in entries] == [entry_id for _, entry_id in submitted]
        assert [fields["runtime_id"] for _, fields in entries] == ["rt-0", "rt-1", "rt-2"]
        positions = [parse_stream_id(entry_id) for entry_id, _ in entries]
        assert positions == sorted(set(positions))

    async def test_fields_are_stored_as_given_text_included(self, backend: JobBackend) -> None:
        fields = {
            "runtime_id": "rt-1",
            "spec": '{"command": ["echo", "héllo ✓"], "env": {}}',
            "team_id": "team-a",
            "empty": "",
        }

        stream, _ = await backend.queue.submit("start", fields)
        fields["team_id"] = "changed after the submit"

        [(_, stored)] = await backend.entries(stream)
        assert stored["spec"] == '{"command": ["echo", "héllo ✓"], "env": {}}'
        assert (stored["team_id"], stored["empty"]) == ("team-a", "")

    async def test_a_jobs_results_are_found_newest_first(self, backend: JobBackend) -> None:
        first = await backend.add_result({"job_id": "j-1", "outcome": "failure"})
        await backend.add_result({"job_id": "j-2", "outcome": "success"})
        again = await backend.add_result({"job_id": "j-1", "outcome": "success"})

        found = await backend.queue.results("j-1")

        assert found == [
            (again, {"job_id": "j-1", "outcome": "success"}),
            (first, {"job_id": "j-1", "outcome": "failure"}),
        ]
        assert await backend.queue.results("j-1", after=first) == found[:1]
        assert await backend.queue.results("j-1", after=again) == []
        assert await backend.queue.results("j-3") == []

    async def test_a_results_read_is_bounded(self, backend: JobBackend) -> None:
        ids = [await backend.add_result({"job_id": "many"}) for _ in range(RESULT_MATCHES + 2)]

        found = await backend.queue.results("many")

        assert [entry_id for entry_id, _ in found] == ids[::-1][:RESULT_MATCHES]


class TestInMemoryJobQueue(JobQueueContract):
    @pytest.fixture
    def backend(self) -> JobBackend:
        streams = InMemoryStreams()

        async def entries(stream: str) -> Entries:
            return streams.entries(stream)

        async def add_result(fields: dict[str, str]) -> str:
            return streams.add(JOB_RESULTS_STREAM, fields)

        return JobBackend(InMemoryJobQueue(streams), entries, add_result)


class TestRedisJobQueue(JobQueueContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect(db=JOBS_DB)
        await client.flushdb()
        yield client
        await client.aclose()

    @pytest.fixture
    def backend(self, client: redis.asyncio.Redis) -> JobBackend:
        async def entries(stream: str) -> Entries:
            found: Any = await client.xrange(stream)
            return [(entry_id, dict(fields)) for entry_id, fields in found]

        async def add_result(fields: dict[str, str]) -> str:
            entry_id: Any = await client.xadd(JOB_RESULTS_STREAM, dict(fields))
            return str(entry_id)

        return JobBackend(RedisJobQueue(client), entries, add_result)

    async def test_unreachable_redis_raises_store_unavailable(self) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisJobQueue(client).submit("start", {"runtime_id": "rt-1"})
        finally:
            await client.aclose()
