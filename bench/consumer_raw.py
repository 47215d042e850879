"""The floor of bench/consumer.py: a raw redis-py group consumer.

    python bench/consumer_raw.py --url URL --stream S --group G --entries N [--batch 100]

XREADGROUP COUNT `--batch`, an awaited no-op handler call per entry (on the
raw bytes: nothing decoded), one XACK per batch. No ordering, no retries, no
claims, no metrics, no logging: what any consumer of the group must at least
do. Also holds the shape of the entries every variant reads (`job_fields`), so
it imports nothing but redis-py and the standard library: the FastStream child
runs in a venv without runplane.

It XADDs the entries first (not timed), then prints one JSON line: entries,
wall_s and cpu_s from the first read until the last batch is acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

RUNTIMES = 1_000
"""Distinct runtime ids over the entries: with 64-100 entries a batch, few
batches hold two entries of one runtime, as with real job traffic."""


def job_fields(index: int) -> dict[str, str]:
    """A stop job as producers write it (docs/jobs.md): about 230 bytes."""
    return {
        "job_id": uuid.uuid4().hex,
        "runtime_id": f"rt-{index % RUNTIMES:05d}-{uuid.UUID(int=index).hex[:12]}",
        "team_id": "team-bench",
        "reason": "scheduled maintenance window",
        "source_ref": f"bench/consumer/{index}",
        "requested_at_ms": str(1_764_000_000_000 + index),
    }


async def prefill(client: Any, stream: str, entries: list[dict[Any, Any]]) -> None:
    """XADD `entries` in pipelines of 5,000."""
    for start in range(0, len(entries), 5_000):
        async with client.pipeline(transaction=False) as pipe:
            for fields in entries[start : start + 5_000]:
                pipe.xadd(stream, fields)
            await pipe.execute()


async def consume(url: str, stream: str, group: str, entries: int, batch: int) -> dict[str, Any]:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, decode_responses=False, protocol=2)
    await prefill(client, stream, [job_fields(i) for i in range(entries)])
    await client.xgroup_create(stream, group, id="0")
    handled = 0

    async def handler(entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        nonlocal handled
        handled += 1

    wall0, cpu0 = time.perf_counter(), time.process_time()
    while handled < entries:
        reply = await client.xreadgroup(group, "bench", {stream: ">"}, count=batch, block=1_000)
        if not reply:
            continue
        read = reply[0][1]
        for entry_id, fields in read:
            await handler(entry_id, fields)
        await client.xack(stream, group, *(entry_id for entry_id, _ in read))
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    await client.aclose()
    return {"entries": handled, "wall_s": wall_s, "cpu_s": cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(consume(args.url, args.stream, args.group, args.entries, args.batch))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
