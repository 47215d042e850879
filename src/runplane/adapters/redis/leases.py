"""Per-runtime leases on Redis: SET NX PX to take, Lua compare-and-X to give back."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
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
        self._release = client.register_script(RELEASE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        check_ttl_ms(ttl_ms)
        with unavailable_on_connection_errors("lease.acquire"):
            reply = await self._client.set(lease_key(runtime_id), token, nx=True, px=ttl_ms)
        return bool(reply)

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        check_ttl_ms(ttl_ms)
        with unavailable_on_connection_errors("lease.renew"):
            reply: int = await self._renew(keys=[lease_key(runtime_id)], args=[token, ttl_ms])
        return reply == 1

    async def release(self, runtime_id: str, token: str) -> bool:
        with unavailable_on_connection_errors("lease.release"):
            reply: int = await self._release(keys=[lease_key(runtime_id)], args=[token])
        return reply == 1


class RedisLeaseProbe:
    """Whether `lease:{<name>}` exists: someone holds that runtime's lease."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def is_held(self, name: str) -> bool:
        with unavailable_on_connection_errors("lease.is_held"):
            return bool(await self.client.exists(lease_key(name)))
