"""Request budgets shared by every instance: a token bucket per API key."""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    """A bucket per name that refills at `per_s` tokens a second and holds at
    most `burst`; each call takes one token."""

    async def take(self, bucket: str, per_s: float, burst: int) -> float:
        """0.0 when a token was taken; else the seconds until one will be there
        (nothing is taken). Raises StoreUnavailable when the store is unreachable."""
