"""The job streams and the job results stream on Redis."""

from __future__ import annotations

import redis.asyncio
from redis.typing import FieldT

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import JOB_RESULTS_STREAM, job_stream
from runplane.domain.jobs import JobResult


class RedisJobResultPublisher:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str = JOB_RESULTS_STREAM,
        max_len: int | None = 1_000_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_len = max_len

    async def publish(self, result: JobResult) -> None:
        # A comprehension, not dict(): mypy needs the wider key type redis-py declares.
        fields: dict[FieldT, FieldT] = {k: v for k, v in result.as_fields().items()}  # noqa: C416
        with unavailable_on_connection_errors("publish job result"):
            await self.client.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)


class RedisJobQueue:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def submit(self, op: str, fields: dict[str, str]) -> tuple[str, str]:
        payload: dict[FieldT, FieldT] = {k: v for k, v in fields.items()}  # noqa: C416
        stream = job_stream(op)
        with unavailable_on_connection_errors("submit job"):
            entry_id = await self.client.xadd(stream, payload)
        return stream, entry_id if isinstance(entry_id, str) else entry_id.decode()
