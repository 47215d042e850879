"""Driver calls to a host's agent over Redis (docs/hosts.md).

- Calls: one stream per host, `runplane:host:{<host_id>}:calls`, read by the
  consumer group `agent`: a call waits there while no agent runs, and one an
  agent read but never acknowledged (it was killed) is read again on restart.
- Answers: one list per call, `runplane:host:{<host_id>}:reply:<call_id>`, that
  the caller BLPOPs; it expires when nobody pops it.
- Fence: one script checks the runtime's lease token and the highest record
  version applied, and claims the call_id, atomically (keys of one runtime's
  slot: `lease:{<runtime_id>}`, `runplane:fence:{<runtime_id>}...`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio
import redis.exceptions

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import (
    AGENT_GROUP,
    fence_call_key,
    fence_key,
    host_calls_stream,
    host_reply_key,
    lease_key,
)
from runplane.domain.host_calls import HostCall, HostUnreachable
from runplane.ports.host_calls import Admission, Delivery

CALLS_MAX_LEN = 100_000
"""A bound on a host's call stream (approximate trim): acknowledged calls are
deleted at once, so only a host whose agent is gone for long ever reaches it."""
BLPOP_CHUNK_S = 5
"""Each BLPOP stays well below the client's socket timeout; the wait loops."""

ADMIT_SCRIPT = """
local known = redis.call('GET', KEYS[3])
if known then
    if known == 'claimed' then return {'claimed', ''} end
    return {'replay', known}
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {'fenced', 'the lease token no longer holds the runtime'}
end
local applied = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) < applied then
    return {'fenced', 'record version ' .. ARGV[2] .. ' is older than ' .. applied .. ', applied'}
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[3], 'claimed', 'PX', ARGV[3])
return {'go', ''}
"""
"""KEYS: lease, fence, call state. ARGV: token, version, call ttl ms, fence ttl ms.
A call_id seen before replays (or was claimed by an agent that died); else the
lease must hold the token and no newer version may have been applied."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RedisHostCallSender:
    """The caller's side (any runplane instance). `stop_waiting` is for
    shutdown: a worker round waiting on a host that just went away (its agent
    gone before it was marked down) would otherwise hold serve's stop for the
    whole call bound."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._stopped: asyncio.Future[None] | None = None
        self._stop_timer: asyncio.TimerHandle | None = None

    def stop_waiting(self, grace_s: float) -> None:
        """From `grace_s` from now, answers are no longer waited for: a wait
        in flight then, and any call after, fails at once with HostUnreachable
        (as a call that got no answer: it may still be applied). Answers take
        milliseconds; the grace lets those in flight come in."""
        if self._stop_timer is None:
            loop = asyncio.get_running_loop()
            self._stop_timer = loop.call_later(max(grace_s, 0.0), self._stop)

    async def send(self, host_id: str, call: HostCall) -> None:
        self._refuse_if_stopped(host_id)
        with unavailable_on_connection_errors("host_call.send"):
            await self._client.xadd(
                host_calls_stream(host_id),
                {"call": call.to_json()},
                maxlen=CALLS_MAX_LEN,
                approximate=True,
            )

    async def wait_answer(self, host_id: str, call_id: str, wait_s: float) -> str | None:
        key = host_reply_key(host_id, call_id)
        until = time.monotonic() + wait_s
        while (left := until - time.monotonic()) > 0:
            self._refuse_if_stopped(host_id)
            # BLPOP's timeout is whole seconds here (0 would block for ever).
            chunk = max(1, min(BLPOP_CHUNK_S, round(left)))
            with unavailable_on_connection_errors("host_call.wait"):
                popped = await self._pop_unless_stopped(key, chunk)
            if popped is not None:
                return _text(popped[1])
        return None

    async def _pop_unless_stopped(self, key: str, timeout_s: int) -> Any:
        pop: asyncio.Future[Any] = asyncio.ensure_future(
            self._client.blpop([key], timeout=timeout_s)
        )
        either: set[asyncio.Future[Any]] = {pop, self._stopped_future()}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the caller was cancelled: so is its read
            pop.cancel()
            raise
        if pop.done():
            return pop.result()
        pop.cancel()  # the connection it used is dropped, not reused mid-reply
        await asyncio.wait({pop})
        return None  # the loop's check tells why

    def _stopped_future(self) -> asyncio.Future[None]:
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
        return self._stopped

    def _stop(self) -> None:
        stopped = self._stopped_future()
        if not stopped.done():
            stopped.set_result(None)

    def _refuse_if_stopped(self, host_id: str) -> None:
        if self._stopped is not None and self._stopped.done():
            raise HostUnreachable(f"host {host_id!r}: runplane is stopping; no answer awaited")


class RedisHostCallInbox:
    """The agent's side, for one host. `client` may keep bytes (decode off):
    a malformed entry is then handed over as it is, never fails the read."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        host_id: str,
        *,
        answer_ttl_s: float = 3600.0,
        reply_ttl_s: float = 300.0,
        fence_ttl_s: float = 7 * 86400.0,
    ) -> None:
        self._client = client
        self.host_id = host_id
        self._stream = host_calls_stream(host_id)
        self._answer_ttl_ms = int(answer_ttl_s * 1000)
        self._reply_ttl_ms = int(reply_ttl_s * 1000)
        self._fence_ttl_ms = int(fence_ttl_s * 1000)
        self._admit = client.register_script(ADMIT_SCRIPT)

    async def ensure_group(self) -> None:
        """The group reads from the stream's start: calls queued before the agent
        ever ran are served (or answered expired)."""
        with unavailable_on_connection_errors("host_call.group"):
            try:
                await self._client.xgroup_create(self._stream, AGENT_GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, count: int, block_ms: int, *, after: str | None) -> Sequence[Delivery]:
        with unavailable_on_connection_errors("host_call.read"):
            reply: Any = await self._client.xreadgroup(
                AGENT_GROUP,
                AGENT_GROUP,
                {self._stream: after or ">"},
                count=count,
                block=None if after is not None else block_ms,
            )
        deliveries: list[Delivery] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                # No fields: deleted since it was delivered. No `call`: malformed.
                raw = fields.get(b"call", fields.get("call", b"")) if fields else None
                deliveries.append(Delivery(_text(entry_id), raw))
        return deliveries

    async def admit(self, call: HostCall) -> tuple[Admission, str]:
        keys = [
            lease_key(call.runtime_id),
            fence_key(call.runtime_id),
            fence_call_key(call.runtime_id, call.call_id),
        ]
        args: list[str | int] = [
            call.lease_token,
            call.record_version,
            self._answer_ttl_ms,
            self._fence_ttl_ms,
        ]
        with unavailable_on_connection_errors("host_call.admit"):
            verdict, detail = await self._admit(keys=keys, args=args)
        return Admission(_text(verdict)), _text(detail)

    async def settle(self, call: HostCall, answer: str) -> None:
        key = fence_call_key(call.runtime_id, call.call_id)
        with unavailable_on_connection_errors("host_call.settle"):
            await self._client.set(key, answer, px=self._answer_ttl_ms)

    async def answer(self, call_id: str, answer: str) -> None:
        key = host_reply_key(self.host_id, call_id)
        with unavailable_on_connection_errors("host_call.answer"):
            async with self._client.pipeline(transaction=True) as pipe:
                # One answer at most waits: a repeated call_id does not pile up.
                pipe.delete(key)
                pipe.rpush(key, answer)
                pipe.pexpire(key, self._reply_ttl_ms)
                await pipe.execute()

    async def ack(self, entry_id: str) -> None:
        with unavailable_on_connection_errors("host_call.ack"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.xack(self._stream, AGENT_GROUP, entry_id)
                pipe.xdel(self._stream, entry_id)
                await pipe.execute()
