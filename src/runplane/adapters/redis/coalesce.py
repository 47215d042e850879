"""Short Redis commands asked for while one is in flight, sent in one pipeline.

A stream consumer runs up to 64 jobs at once, and each sends three short
commands (the lease's SET NX, its release, the result's XADD). Sent one by one,
each costs a pooled connection, a socket write, a timeout task and a wake-up of
the loop for its reply: with the in-memory driver that was a third of a job's
CPU. Through `coalescer_for(client).call(...)`:

- with nothing in flight, a command goes out at once, on its own, from the
  caller's task: an idle process pays nothing more than before;
- commands asked for while one is in flight wait for it, then go out together
  in one pipeline (MULTI-less: each keeps its own reply or error), and those
  asked for meanwhile in the next one. The wait is at most one round trip.

Only for commands that answer at once (never a blocking read: it would hold
the others back). A caller cancelled before its command was sent has it left
out; once sent, it runs, as a cancelled command always could. Connection
errors reach every command of the pipeline (after redis-py's retries), so each
caller maps them as before. A Redis Cluster client sends each command on its
own: a pipeline there spans slots and nodes."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster

logger = logging.getLogger(__name__)

MAX_PIPELINE = 256
"""Commands per pipeline at most: bounds one reply's size and parse."""

_Waiting = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class CommandCoalescer:
    """See the module docstring; one per client (`coalescer_for`)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._direct = isinstance(client, RedisCluster)
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[_Waiting] = []
        self._flush: asyncio.Task[None] | None = None

    async def call(self, *args: Any) -> Any:
        """`client.execute_command(*args)`'s reply, or its error."""
        if self._direct:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A client used from another loop (a test's, a new run): what the
            # old loop left in flight will never finish there.
            self._loop, self._busy, self._waiting, self._flush = loop, False, [], None
        if self._busy:
            answer: asyncio.Future[Any] = loop.create_future()
            self._waiting.append((args, answer))
            return await answer
        self._busy = True
        try:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            self._next()

    def _next(self) -> None:
        """After a send: the commands that queued meanwhile go next, together."""
        if not self._waiting:
            self._busy = False
            return
        assert self._loop is not None
        self._flush = self._loop.create_task(self._send_waiting(), name="redis pipeline")

    async def _send_waiting(self) -> None:
        batch = [w for w in self._waiting[:MAX_PIPELINE] if not w[1].done()]
        del self._waiting[:MAX_PIPELINE]
        try:
            if batch:
                await self._send(batch)
        except asyncio.CancelledError:
            # The loop is ending: nobody is left to send for.
            for _, answer in batch + self._waiting:
                answer.cancel()
            self._waiting, self._busy = [], False
            raise
        self._next()

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection: every command's error
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, answer), reply in zip(batch, replies, strict=True):
            if answer.done():
                continue  # its caller gave up waiting
            if isinstance(reply, Exception):
                answer.set_exception(reply)
            else:
                answer.set_result(reply)


_COALESCERS: weakref.WeakKeyDictionary[redis.asyncio.Redis, CommandCoalescer] = (
    weakref.WeakKeyDictionary()
)


def coalescer_for(client: redis.asyncio.Redis) -> CommandCoalescer:
    """The one coalescer of `client`: every adapter on it shares its pipelines."""
    coalescer = _COALESCERS.get(client)
    if coalescer is None:
        coalescer = _COALESCERS[client] = CommandCoalescer(client)
    return coalescer
