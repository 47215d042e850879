"""Per-key rate limits on Redis: GCRA (a token bucket kept as one timestamp) in
one Lua script, so every instance shares the budget and two racing calls
cannot both take the last token."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import rate_limit_key

GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - tolerance - now
if wait > 0 then
    return wait
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return 0
"""
"""KEYS[1]: the bucket; ARGV: microseconds per token, burst. The key holds the
theoretical arrival time (TAT, microseconds, Redis's clock, so instances need no
synchronised clocks); a call is allowed while TAT + interval - burst * interval
is not in the future. Returns 0, or the microseconds to wait. The key expires
once the bucket is full again."""


class RedisRateLimiter:
    """RateLimiter on one key per bucket, `runplane:ratelimit:{<bucket>}`."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._gcra = client.register_script(GCRA_SCRIPT)

    async def take(self, bucket: str, per_s: float, burst: int) -> float:
        check_rate(per_s, burst)
        interval_us = max(1, round(1_000_000 / per_s))
        with unavailable_on_connection_errors("rate_limit.take"):
            wait_us: int = await self._gcra(
                keys=[rate_limit_key(bucket)], args=[interval_us, burst]
            )
        return int(wait_us) / 1_000_000


def check_rate(per_s: float, burst: int) -> None:
    if per_s <= 0 or burst < 1:
        raise ValueError(f"a rate needs per_s > 0 and burst >= 1, got {per_s}/s burst {burst}")
