"""FastStream's side of bench/consumer.py: its Redis stream subscriber in batches.

    bench/.venv-faststream/bin/python bench/consumer_faststream.py \
        --url URL --stream S --group G --entries N [--batch 100]

Runs in a venv of its own (bench/consumer.py makes it: faststream[redis]
pinned there, not in runplane's dependencies). The entries carry the same
fields as the other variants' (consumer_raw.job_fields), in FastStream's own
message format (what its publisher writes: the fields as a JSON body in
`__data__`), XADDed first and not timed. The subscriber is
`StreamSub(batch=True, max_records=--batch)` in a consumer group created at
"0"; FastStream decodes each batch's bodies, calls the handler once per batch
and acknowledges the batch with one XACK. Its per-message access log is off
(runplane logs nothing for an entry that succeeds). Prints one JSON line: entries,
wall_s and cpu_s from the broker's start until the handler saw the last entry
(the last XACK, one round trip, is not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from consumer_raw import job_fields, prefill


async def consume(url: str, stream: str, group: str, entries: int, batch: int) -> dict[str, Any]:
    import redis.asyncio
    from faststream.redis import RedisBroker, StreamSub
    from faststream.redis.parser.binary import BinaryMessageFormatV1

    client = redis.asyncio.Redis.from_url(url, decode_responses=False, protocol=2)
    bodies = []
    for i in range(entries):
        data = await BinaryMessageFormatV1.encode(
            message=job_fields(i), reply_to=None, headers=None, correlation_id=uuid.uuid4().hex
        )
        bodies.append({b"__data__": data})
    await prefill(client, stream, bodies)
    await client.xgroup_create(stream, group, id="0")
    await client.aclose()

    # No per-message access log ("Received"/"Processed" at INFO by default):
    # runplane logs nothing per entry that succeeds either.
    broker = RedisBroker(url, logger=None)
    handled = 0
    finished = asyncio.Event()
    marks: dict[str, float] = {}

    @broker.subscriber(
        stream=StreamSub(stream, group=group, consumer="bench", batch=True, max_records=batch)
    )
    async def handle(messages):  # type: ignore[no-untyped-def]
        nonlocal handled
        handled += len(messages)
        if handled >= entries and not finished.is_set():
            marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
            finished.set()

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await broker.start()
    await finished.wait()
    await broker.stop()
    return {"entries": handled, "wall_s": marks["wall"] - wall0, "cpu_s": marks["cpu"] - cpu0}


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
