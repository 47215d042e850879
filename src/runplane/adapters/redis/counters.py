"""ChangeCounter on one Redis key (INCR), shared by every instance.

Reads asked in one turn of the event loop share one GET, sent after the last
of them was asked: each caller still gets a value read after it asked (what
the webhook cache's staleness bound rests on, services/webhooks/cached.py),
and a batch of events fanned out together costs one round trip, not one each."""

from __future__ import annotations

import asyncio

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors


class RedisChangeCounter:
    def __init__(self, client: redis.asyncio.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._next: asyncio.Future[int] | None = None
        """The read the callers of this turn wait for; not sent yet."""
        self._reads: set[asyncio.Task[None]] = set()

    async def current(self) -> int:
        shared = self._next
        if shared is None:
            loop = asyncio.get_running_loop()
            shared = self._next = loop.create_future()
            # Every caller gave up (cancelled): an error nobody reads must not be logged.
            shared.add_done_callback(lambda f: f.cancelled() or f.exception())
            loop.call_soon(self._send, shared)
        # Shielded: one caller's cancel must not cancel the others' read.
        return await asyncio.shield(shared)

    def _send(self, shared: asyncio.Future[int]) -> None:
        self._next = None  # callers from now on ask for a read of their own
        task = asyncio.get_running_loop().create_task(self._read(shared))
        self._reads.add(task)  # held, so it is not collected mid-flight
        task.add_done_callback(self._reads.discard)

    async def _read(self, shared: asyncio.Future[int]) -> None:
        try:
            with unavailable_on_connection_errors("counter.current"):
                value = await self._client.get(self._key)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except Exception as exc:
            shared.set_exception(exc)
        else:
            shared.set_result(int(value or 0))

    async def bump(self) -> None:
        with unavailable_on_connection_errors("counter.bump"):
            await self._client.incr(self._key)
