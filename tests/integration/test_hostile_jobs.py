"""Hostile entries on every job stream against a real redis-server: each gets
exactly one `invalid_request` result, is acknowledged, and the consumer goes on
to the good entry after it (DESIGN §4: every consumed entry gets a result)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.redis.client import connect_bytes
from runplane.adapters.redis.jobs import RedisJobResultPublisher
from runplane.domain.jobs import MAX_FIELD_CHARS
from runplane.domain.operations import OpKind
from runplane.workers.jobs.consumers import job_consumers
from tests.support.redis import RedisServer
from tests.support.streams import fast, running, unique, wait_until
from tests.support.world import World

DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE: dict[str, dict[bytes, bytes]] = {
    "deep-spec": {
        b"runtime_id": b"rt-x",
        b"job_id": b"deep",
        b"spec": b'{"a":' + DEEP.encode() + b"}",
    },
    "surrogate-spec": {
        b"runtime_id": b"rt-x",
        b"job_id": b"surrogate",
        b"spec": b'{"env":{"A":"\\ud800"}}',
    },
    "non-utf8": {b"runtime_id": b"rt-\xff\xfe", b"job_id": b"bytes", b"reason": b"\xc3\x28"},
    "huge": {b"runtime_id": b"rt-x", b"job_id": b"huge", b"reason": b"r" * (1024 * 1024)},
    "missing": {b"job_id": b"missing"},
    "unknown-only": {b"job_id": b"unknown", b"colour": b"green", b"\xff": b"x"},
    "bad-team": {
        b"runtime_id": b"rt-x",
        b"job_id": b"team",
        b"team_id": b"a:b",
        b"reason": b"idle",
    },
}
GOOD_SPEC = b'{"command": ["sleep", "60"]}'


def good_entry(op: OpKind) -> dict[bytes, bytes]:
    """An entry each op can act on (rt-1 exists and runs; patch carries a spec;
    an unknown field is passed over, not refused)."""
    fields = {b"runtime_id": b"rt-1", b"job_id": f"good-{op}".encode(), b"colour": b"green"}
    if op is OpKind.STOP:
        fields[b"reason"] = b"idle"
    if op is OpKind.PATCH:
        fields[b"spec"] = GOOD_SPEC
    return fields


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect_bytes(redis_server.url)
    yield client
    await client.aclose()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("op", list(OpKind))
async def test_every_hostile_entry_gets_one_invalid_request_result(
    client: redis.asyncio.Redis, op: OpKind
) -> None:
    world = World.build()
    await world.create()
    stream, results = unique(f"jobs-{op}"), unique("results")
    for name, fields in HOSTILE.items():
        if name == "huge":
            assert len(fields[b"reason"]) > MAX_FIELD_CHARS
        await client.xadd(stream, fields)  # type: ignore[arg-type]
    await client.xadd(stream, good_entry(op))  # type: ignore[arg-type]
    settings = fast(max_deliveries=2)
    [consumer] = [
        c
        for c in job_consumers(
            client,
            streams={kind: stream if kind is op else unique("idle") for kind in OpKind},
            lifecycle=world.lifecycle,
            runtimes=world.runtimes,
            results=RedisJobResultPublisher(client, stream=results),
            clock=world.clock,
            group="g",
            consumer="c1",
            settings=settings,
            lease_wait_ms=0,
        )
        if c.stream == stream
    ]

    async def all_answered() -> bool:
        return int(await client.xlen(results)) >= len(HOSTILE) + 1

    async with running(consumer):
        await wait_until(all_answered)
        await wait_until(lambda: _nothing_pending(client, stream))
    answers = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await client.xrange(results)
    ]
    by_job = {a["job_id"]: a for a in answers}
    assert len(answers) == len(by_job) == len(HOSTILE) + 1  # exactly one each
    hostile_ids = {"deep", "surrogate", "bytes", "huge", "missing", "unknown", "team"}
    for job_id in hostile_ids:
        assert (by_job[job_id]["outcome"], by_job[job_id]["error_code"]) == (
            "failure",
            "invalid_request",
        ), by_job[job_id]
    assert by_job["bytes"]["runtime_id"] == ""  # undecodable text is never echoed
    if op in (OpKind.START, OpKind.PATCH):  # the ops that read a spec
        assert "deeper than 32" in by_job["deep"]["error_message"]
        assert "Unicode" in by_job["surrogate"]["error_message"]
    good = by_job[f"good-{op}"]
    assert good["error_code"] != "invalid_request", good
    dead = await client.xrange(settings.dead_letter_stream)
    assert not [f for _, f in dead if f[b"stream"] == stream.encode()]  # none was retried


async def _nothing_pending(client: redis.asyncio.Redis, stream: str) -> bool:
    groups = await client.xinfo_groups(stream)
    return sum(int(group["pending"]) for group in groups) == 0
