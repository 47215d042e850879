"""The SSE baseline for bench/sse.py: a minimal one-reader broadcast server.

    python bench/sse_baseline.py --redis-url redis://127.0.0.1:6379/0 --port 8099

One XREAD loop on `runplane:events` (from its newest entry on); each entry is
formatted once as an SSE frame (`id:`, `event:`, `data:` the entry's JSON as
published) and put on every connected follower's queue; a follower's response
writes what its queue holds, all of it in one chunk. No keys, no teams, no
replay, no bound on a queue: what a broadcast costs at least, on the server
`runplane serve` uses (uvicorn configured by runplane's own `uvicorn_config`,
so the same protocol class, limits and keep-alive) with the same SSE response
(sse-starlette, the same ping and send timeout) or, with `--response
streaming`, Starlette's plain StreamingResponse.

`BaselineServer` starts it as a child process for the bench and stops it."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio
import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from runplane.bootstrap.serve import uvicorn_config
from runplane.config import Settings
from runplane.logs import configure_logging

STREAM = "runplane:events"
FIELD = b"event"
PING_S = 15.0
SEND_TIMEOUT_S = 60.0
RESPONSES = ("sse-starlette", "streaming")


class Broadcast:
    """The one reader and the followers' queues."""

    def __init__(self, redis_url: str, flush_s: float = 0.0) -> None:
        self.client = redis.asyncio.Redis.from_url(redis_url)
        self.flush_s = flush_s
        self.queues: set[asyncio.Queue[bytes]] = set()

    async def run(self) -> None:
        newest = await self.client.xrevrange(STREAM, count=1)
        position: bytes = newest[0][0] if newest else b"0-0"
        while True:
            reply = await self.client.xread({STREAM: position}, count=500, block=2_000)
            for _, entries in reply or ():
                for position, fields in entries:
                    raw = fields[FIELD]
                    kind = json.loads(raw)["type"].encode()
                    frame = b"id: %s\r\nevent: %s\r\ndata: %s\r\n\r\n" % (position, kind, raw)
                    for queue in self.queues:
                        queue.put_nowait(frame)
            if reply and self.flush_s:  # let more arrive: one write per follower for all
                await asyncio.sleep(self.flush_s)

    async def frames(self, queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
        try:
            while True:
                frames = [await queue.get()]
                while not queue.empty():
                    frames.append(queue.get_nowait())
                yield b"".join(frames)
        finally:
            self.queues.discard(queue)


def app(broadcast: Broadcast, response: str) -> Starlette:
    async def stream(request: Request) -> Response:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        broadcast.queues.add(queue)
        if response == "streaming":
            return StreamingResponse(broadcast.frames(queue), media_type="text/event-stream")
        return EventSourceResponse(
            broadcast.frames(queue), ping=PING_S, send_timeout=SEND_TIMEOUT_S
        )

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/v1/events/stream", stream), Route("/readyz", ready)],
    )


async def serve(redis_url: str, port: int, response: str, flush_s: float) -> None:
    settings = Settings(port=port)
    configure_logging(settings.log_format)
    broadcast = Broadcast(redis_url, flush_s)
    server = uvicorn.Server(uvicorn_config(app(broadcast, response), settings))
    reader = asyncio.create_task(broadcast.run())
    try:
        await server.serve()
    finally:
        reader.cancel()
        await broadcast.client.aclose()


@dataclass
class BaselineServer:
    """The baseline in a child process, like `runplane serve` in the bench."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def launch(
        cls, log: Path, redis_url: str, port: int, response: str = RESPONSES[0], flush_ms: int = 0
    ) -> BaselineServer:
        command = [sys.executable, __file__, "--redis-url", redis_url, "--port", str(port)]
        command += ["--flush-ms", str(flush_ms)]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*command, "--response", response], stdout=out, stderr=subprocess.STDOUT
            )
        server = cls(process, port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the SSE baseline exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"the SSE baseline did not come up:\n{log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # uvicorn's own handler; streams are cut
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response", choices=RESPONSES, default=RESPONSES[0])
    parser.add_argument(
        "--flush-ms",
        type=int,
        default=0,
        help="wait this long after a read (runplane's sse_flush_ms)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.redis_url, args.port, args.response, args.flush_ms / 1000))


if __name__ == "__main__":
    main()
