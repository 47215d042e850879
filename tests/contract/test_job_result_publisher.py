"""JobResultPublisher contract: the in-memory fake and Redis put job results on
`runtime:job_results` alike: in order, as the flat fields of DESIGN §4, and a
store that cannot be reached is StoreUnavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.jobs import RedisJobResultPublisher
from runplane.domain.errors import ErrorCode, StoreUnavailable
from runplane.domain.jobs import JobResult
from runplane.domain.operations import Outcome
from runplane.ports.streams import JobResultPublisher
from runplane.testing.jobs import InMemoryJobResults
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget
from tests.support.streams import unique

RESULT_FIELDS = {
    "job_id",
    "runtime_id",
    "op",
    "outcome",
    "error_code",
    "error_message",
    "status",
    "container_id",
    "engine_endpoint",
    "finished_at_ms",
}
"""DESIGN §4's `runtime:job_results` fields."""


@dataclass(frozen=True, slots=True)
class ResultsBackend:
    publisher: JobResultPublisher
    published: Callable[[], Awaitable[list[dict[str, str]]]]
    """The fields of every entry on the results stream, oldest first."""
    unreachable: JobResultPublisher
    """A publisher whose store cannot be reached."""


SUCCESS = JobResult(
    job_id="job-1",
    runtime_id="rt-1",
    op="start",
    outcome=Outcome.SUCCESS,
    finished_at_ms=1_700_000_000_123,
    status="running",
    container_id="c-1",
    engine_endpoint="127.0.0.1:7000",
)
FAILURE = JobResult(
    job_id="runtime:stop_jobs/1700000000000-0",
    runtime_id="rt-2",
    op="stop",
    outcome=Outcome.FAILURE,
    finished_at_ms=1_700_000_000_456,
    error_code=ErrorCode.INVALID_STATE,
    error_message="stopped may move to starting or removing — not to stopping",
    status="stopped",
)


class JobResultPublisherContract:
    """Every JobResultPublisher passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> ResultsBackend:
        raise NotImplementedError

    async def test_results_land_in_order_as_flat_fields(self, backend: ResultsBackend) -> None:
        await backend.publisher.publish(SUCCESS)
        await backend.publisher.publish(FAILURE)

        published = await backend.published()

        assert published == [SUCCESS.as_fields(), FAILURE.as_fields()]
        assert all(set(fields) == RESULT_FIELDS for fields in published)

    async def test_a_success_has_an_empty_error_and_a_failure_its_code(
        self, backend: ResultsBackend
    ) -> None:
        await backend.publisher.publish(SUCCESS)
        await backend.publisher.publish(FAILURE)

        success, failure = await backend.published()

        assert (success["outcome"], success["error_code"], success["error_message"]) == (
            "success",
            "",
            "",
        )
        assert (failure["outcome"], failure["error_code"]) == ("failure", "invalid_state")
        assert failure["error_message"] == FAILURE.error_message
        assert failure["finished_at_ms"] == "1700000000456"

    async def test_a_repeated_result_is_published_again(self, backend: ResultsBackend) -> None:
        await backend.publisher.publish(SUCCESS)
        await backend.publisher.publish(SUCCESS)

        assert await backend.published() == [SUCCESS.as_fields()] * 2

    async def test_an_unreachable_store_is_store_unavailable(self, backend: ResultsBackend) -> None:
        with pytest.raises(StoreUnavailable):
            await backend.unreachable.publish(SUCCESS)


class TestInMemoryJobResults(JobResultPublisherContract):
    @pytest.fixture
    def backend(self) -> ResultsBackend:
        results = InMemoryJobResults()
        down = InMemoryJobResults()
        down.unavailable = True

        async def published() -> list[dict[str, str]]:
            return [result.as_fields() for result in results.results]

        return ResultsBackend(results, published, down)


class TestRedisJobResultPublisher(JobResultPublisherContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    async def backend(self, client: redis.asyncio.Redis) -> AsyncIterator[ResultsBackend]:
        stream = unique("job_results")
        down_client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)

        async def published() -> list[dict[str, str]]:
            entries: Any = await client.xrange(stream)
            return [dict(fields) for _, fields in entries]

        yield ResultsBackend(
            RedisJobResultPublisher(client, stream=stream),
            published,
            RedisJobResultPublisher(down_client, stream=stream),
        )
        await down_client.aclose()
