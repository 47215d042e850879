"""Per-runtime leases on Redis: SET NX PX to take, Lua compare-and-X to give back.

Renewals asked in one turn of the event loop go to Redis in one pipeline (an
instance's leaderships renew together: services/lease.py), each with its own
answer; on a Redis Cluster, whose keys live in many slots, one by one."""

from __future__ import annotations

import asyncio

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.coalesce import coalescer_for
from runplane.adapters.redis.names import lease_key

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Delete the lease only if the caller's token still holds it."""

RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""Push the lease's expiry to now + ttl only if the caller's token still holds it."""


def check_ttl_ms(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")


class RedisLeaseStore:
    """LeaseStore on one Redis key per runtime, `lease:{<runtime_id>}` = token.

    Connection failures raise StoreUnavailable. A retried SET whose first reply
    was lost answers False while our own token holds the key: that is safe (it
    frees itself after ttl_ms), never a second holder.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._renew = client.register_script(RENEW_SCRIPT)
        self._batches = not isinstance(client, redis.asyncio.RedisCluster)
        self._waiting: list[tuple[str, str, int, asyncio.Future[bool]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        # Takes and releases asked for together share a round trip (coalesce.py).
        self._commands = coalescer_for(client)

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        check_ttl_ms(ttl_ms)
        with unavailable_on_connection_errors("lease.acquire"):
            reply = await self._commands.call(
                "SET", lease_key(runtime_id), token, "NX", "PX", ttl_ms
            )
        return bool(reply)

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        check_ttl_ms(ttl_ms)
        if not self._batches:
            with unavailable_on_connection_errors("lease.renew"):
                reply: int = await self._renew(keys=[lease_key(runtime_id)], args=[token, ttl_ms])
            return reply == 1
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)  # after every renewal asked in this turn
        self._waiting.append((runtime_id, token, ttl_ms, answer))
        return await answer

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._renew_all(batch))
        self._flushes.add(task)  # held, so it is not collected mid-flight
        task.add_done_callback(self._flushes.discard)

    async def _renew_all(self, batch: list[tuple[str, str, int, asyncio.Future[bool]]]) -> None:
        try:
            with unavailable_on_connection_errors("lease.renew"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for runtime_id, token, ttl_ms, _ in batch:
                        # EVAL, not EVALSHA: a pipeline cannot retry a NOSCRIPT.
                        pipe.eval(RENEW_SCRIPT, 1, lease_key(runtime_id), token, ttl_ms)
                    replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for *_, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (*_, answer), reply in zip(batch, replies, strict=True):
            if answer.done():
                continue  # its caller gave up waiting (cancelled, timed out)
            if isinstance(reply, Exception):
                answer.set_exception(reply)
            else:
                answer.set_result(reply == 1)

    async def release(self, runtime_id: str, token: str) -> bool:
        with unavailable_on_connection_errors("lease.release"):
            # EVAL, not EVALSHA: a pipeline cannot retry a NOSCRIPT.
            reply: int = await self._commands.call(
                "EVAL", RELEASE_SCRIPT, 1, lease_key(runtime_id), token
            )
        return reply == 1


class RedisLeaseProbe:
    """Whether `lease:{<name>}` exists: someone holds that runtime's lease."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def is_held(self, name: str) -> bool:
        with unavailable_on_connection_errors("lease.is_held"):
            return bool(await self.client.exists(lease_key(name)))
