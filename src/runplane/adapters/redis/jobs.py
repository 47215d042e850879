"""The job streams and the job results stream on Redis."""

from __future__ import annotations

from typing import Any

import redis.asyncio
from redis.typing import FieldT

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.coalesce import coalescer_for
from runplane.adapters.redis.names import JOB_RESULTS_STREAM, job_stream
from runplane.domain.jobs import JobResult
from runplane.ports.streams import RESULT_MATCHES, RESULT_SCAN

PAGE = 1000


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
        # Results published together share a round trip (coalesce.py).
        self._commands = coalescer_for(client)

    async def publish(self, result: JobResult) -> None:
        args: list[Any] = [self.stream]
        if self.max_len is not None:
            args += ["MAXLEN", "~", self.max_len]
        args.append("*")
        for name, value in result.as_fields().items():
            args += (name, value)
        with unavailable_on_connection_errors("publish job result"):
            await self._commands.call("XADD", *args)


class RedisJobQueue:
    def __init__(
        self, client: redis.asyncio.Redis, results_stream: str = JOB_RESULTS_STREAM
    ) -> None:
        self.client = client
        self.results_stream = results_stream

    async def submit(self, op: str, fields: dict[str, str]) -> tuple[str, str]:
        payload: dict[FieldT, FieldT] = {k: v for k, v in fields.items()}  # noqa: C416
        stream = job_stream(op)
        with unavailable_on_connection_errors("submit job"):
            entry_id = await self.client.xadd(stream, payload)
        return stream, entry_id if isinstance(entry_id, str) else entry_id.decode()

    async def results(
        self, job_id: str, *, after: str | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        found: list[tuple[str, dict[str, str]]] = []
        floor = f"({after}" if after else "-"
        top, scanned = "+", 0
        with unavailable_on_connection_errors("read job results"):
            while scanned < RESULT_SCAN and len(found) < RESULT_MATCHES:
                # Any: redis-py types a reply as maybe-None, for pipelines.
                page: Any = await self.client.xrevrange(self.results_stream, top, floor, count=PAGE)
                for raw_id, raw_fields in page:
                    fields = {_text(k): _text(v) for k, v in raw_fields.items()}
                    if fields.get("job_id") == job_id:
                        found.append((_text(raw_id), fields))
                scanned += len(page)
                if len(page) < PAGE:
                    break
                top = f"({_text(page[-1][0])}"
        return found[:RESULT_MATCHES]


def _text(value: bytes | str) -> str:
    # The stream clients do not decode (decode_responses=False); results are UTF-8.
    return value.decode(errors="replace") if isinstance(value, bytes) else value
