"""SSE under load: many followers of `GET /v1/events/stream` while events arrive
at a steady rate.

    python bench/sse.py                       # 1,000 followers, 200 events/s, 20 s
    python bench/sse.py --baseline-src /tmp/runplane-base/src

It starts its own Debian redis-server and a `runplane serve` on it (a child
process; the followers run in this one), connects every follower (no
Last-Event-ID: from now), then XADDs lifecycle events to `runplane:events` at
`--rate` for `--seconds`, and waits for the followers to finish. A follower is
a raw HTTP/1.1 client that counts the `id:` lines it receives, checks they come
in stream order with no duplicate, and, when the server ends its stream (a
`runplane.lagging` frame, or any close), reconnects with Last-Event-ID as an
EventSource would. It prints how many followers received every event on their
first connection, how many after reconnecting, and how many did not, with the
CPU time `serve` used (the followers and the publisher share the machine).

`--baseline-src` runs the same load against another source tree's `serve`
(e.g. `git archive <commit> src | tar -x -C /tmp/runplane-base`), for a
before/after comparison. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway redis-server and serve

import psutil  # noqa: E402
import redis as sync_redis  # noqa: E402
from tests.support.events import lifecycle_event  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

from runplane.domain.lifecycle_events import EVENT_FIELD  # noqa: E402

EVENTS_STREAM = "runplane:events"
ID_LINE = re.compile(rb"^id: (\d+)-(\d+)\r?$", re.MULTILINE)
DRAIN_S = 30.0
"""How long followers may take, after the last event, to receive everything."""


class Follower(asyncio.Protocol):
    """One SSE client: counts the ids it receives, reconnects when cut. A
    Protocol, not streams: the bench's own cost per frame must stay small."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.expected = 0
        self.received = 0
        self.last = (0, 0)
        self.reconnects = 0
        self.lagging = 0
        self.disorder = 0
        self.connected = asyncio.Event()
        self.done = asyncio.Event()
        self._closed = asyncio.Event()
        self._transport: asyncio.Transport | None = None
        self._pending = b""
        self._head = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.done.is_set():
            self._closed.clear()
            self._head, self._pending = True, b""
            try:
                await loop.create_connection(lambda: self, self.host, self.port)
                await self._closed.wait()
            except OSError:
                pass
            if not self.done.is_set():
                self.reconnects += 1
                await asyncio.sleep(0.1)
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        head = [
            "GET /v1/events/stream HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Authorization: Bearer {self.key}",
            "Accept: text/event-stream",
        ]
        if self.last != (0, 0):
            head.append(f"Last-Event-ID: {self.last[0]}-{self.last[1]}")
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()

    def data_received(self, data: bytes) -> None:
        """Chunked SSE frames. Each chunk the server writes holds whole frames,
        so chunk-size lines fall between frames and every `id:` line is whole
        once the bytes up to the last blank line are in."""
        data = self._pending + data
        if self._head:
            head, sep, data = data.partition(b"\r\n\r\n")
            if not sep:
                self._pending = head
                return
            if not head.startswith(b"HTTP/1.1 200"):
                self._end()
                return
            self._head = False
            self.connected.set()
        cut = data.rfind(b"\r\n\r\n")
        if cut < 0:
            self._pending = data
            return
        complete, self._pending = data[: cut + 4], data[cut + 4 :]
        self._take(complete)
        if self.done.is_set() or b"event: runplane.lagging" in complete:
            self._end()
        elif self._pending.endswith(b"0\r\n\r\n") or complete.endswith(b"\r\n0\r\n\r\n"):
            self._end()  # the server ended the stream

    def _end(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _take(self, frames: bytes) -> None:
        lagging = frames.find(b"event: runplane.lagging")
        if lagging >= 0:  # the last frame: its id is where to resume, not an event
            start = frames.rfind(b"\r\n\r\n", 0, lagging)
            frames, cut = (b"", frames) if start < 0 else (frames[: start + 4], frames[start + 4 :])
            self.lagging += 1
            for ms, seq in ID_LINE.findall(cut):
                self.last = max(self.last, (int(ms), int(seq)))
        for ms, seq in ID_LINE.findall(frames):
            at = (int(ms), int(seq))
            if at <= self.last:
                self.disorder += 1
                continue
            self.last, self.received = at, self.received + 1
        if self.expected and self.received >= self.expected:
            self.done.set()


def publish(redis_url: str, total: int, rate: float) -> None:
    """XADD `total` events at `rate` per second (a process of its own, so the
    followers' work cannot slow it down)."""
    client = sync_redis.Redis.from_url(redis_url)
    payloads = [lifecycle_event(n).to_json() for n in range(1, total + 1)]
    started = time.monotonic()
    for n, payload in enumerate(payloads):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.xadd(EVENTS_STREAM, {EVENT_FIELD: payload})
    client.close()


async def run_load(url: str, redis_url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    followers = [Follower(host, int(port), key) for _ in range(args.followers)]
    tasks = [asyncio.create_task(f.run()) for f in followers]
    async with asyncio.timeout(60):
        for follower in followers:
            await follower.connected.wait()
    total = int(args.rate * args.seconds)
    for follower in followers:
        follower.expected = total
    started = time.monotonic()
    publisher = multiprocessing.Process(target=publish, args=(redis_url, total, args.rate))
    publisher.start()
    await asyncio.to_thread(publisher.join)
    published_s = time.monotonic() - started
    await asyncio.wait([asyncio.ensure_future(f.done.wait()) for f in followers], timeout=DRAIN_S)
    finished_s = time.monotonic() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    complete = [f.received == total and f.disorder == 0 for f in followers]
    return {
        "followers": args.followers,
        "events": total,
        "rate_per_s": args.rate,
        "published_s": round(published_s, 1),
        "finished_s": round(finished_s, 1),
        "every_event_on_first_stream": sum(
            c and f.reconnects == 0 for c, f in zip(complete, followers, strict=True)
        ),
        "every_event_after_reconnecting": sum(
            c and f.reconnects > 0 for c, f in zip(complete, followers, strict=True)
        ),
        "missing_events": sum(not c for c in complete),
        "streams_ended_by_server": sum(f.reconnects for f in followers),
        "lagging_frames": sum(f.lagging for f in followers),
        "out_of_order_or_duplicate": sum(f.disorder for f in followers),
        "events_received": sum(f.received for f in followers),
    }


def bench(label: str, src: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runplane-bench-sse-") as tmp:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        if src is not None:
            os.environ["PYTHONPATH"] = str(src)
        try:
            serve = RunplaneServer.launch(Path(tmp) / "serve", redis_url=redis_server.url)
        finally:
            os.environ.pop("PYTHONPATH", None)
        assert serve.process is not None
        server = psutil.Process(serve.process.pid)
        try:
            before = server.cpu_times()
            result = asyncio.run(run_load(serve.url, redis_server.url, serve.admin_key, args))
            after = server.cpu_times()
            used = (after.user + after.system) - (before.user + before.system)
            result["serve_cpu_s"] = round(used, 1)
        finally:
            serve.stop()
            redis_server.stop()
    return {"label": label} | result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-src", type=Path, help="another tree's src/ to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [bench("this tree", None, args)]
    if args.baseline_src is not None:
        results.append(bench(f"baseline {args.baseline_src}", args.baseline_src, args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print(f"== {result.pop('label')}")
        for name, value in result.items():
            print(f"  {name:34} {value}")


if __name__ == "__main__":
    main()
