"""Dict-backed RateLimiter: the fake the contract suite holds to Redis."""

from __future__ import annotations

from runplane.ports.system import Clock

_US = 1_000_000


class InMemoryRateLimiter:
    """The Redis adapter's GCRA over a dict of theoretical arrival times
    (microseconds of `clock`); atomic under asyncio, as nothing awaits."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tat: dict[str, int] = {}

    async def take(self, bucket: str, per_s: float, burst: int) -> float:
        if per_s <= 0 or burst < 1:
            raise ValueError(f"a rate needs per_s > 0 and burst >= 1, got {per_s}/s burst {burst}")
        now = round(self._clock.now().timestamp() * _US)
        interval = max(1, round(_US / per_s))
        new_tat = max(self._tat.get(bucket, now), now) + interval
        wait = new_tat - interval * burst - now
        if wait > 0:
            return wait / _US
        self._tat[bucket] = new_tat
        return 0.0
