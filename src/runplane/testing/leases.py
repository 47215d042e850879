"""Dict-backed LeaseStore and OffsetStore: the fakes the contract suites hold to Redis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from runplane.ports.system import Clock


def _check_ttl_ms(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")


@dataclass(frozen=True, slots=True)
class _Lease:
    token: str
    expires_at: datetime


class InMemoryLeaseStore:
    """Leases in a dict; a lease whose expiry is not after `clock.now()` is free.

    Each method runs without awaiting, so it is atomic under asyncio.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._leases: dict[str, _Lease] = {}

    def _live(self, runtime_id: str) -> _Lease | None:
        lease = self._leases.get(runtime_id)
        if lease is not None and lease.expires_at <= self._clock.now():
            del self._leases[runtime_id]
            return None
        return lease

    def _expiry(self, ttl_ms: int) -> datetime:
        return self._clock.now() + timedelta(milliseconds=ttl_ms)

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        _check_ttl_ms(ttl_ms)
        if self._live(runtime_id) is not None:
            return False
        self._leases[runtime_id] = _Lease(token, self._expiry(ttl_ms))
        return True

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        _check_ttl_ms(ttl_ms)
        lease = self._live(runtime_id)
        if lease is None or lease.token != token:
            return False
        self._leases[runtime_id] = _Lease(token, self._expiry(ttl_ms))
        return True

    async def release(self, runtime_id: str, token: str) -> bool:
        lease = self._live(runtime_id)
        if lease is None or lease.token != token:
            return False
        del self._leases[runtime_id]
        return True

    def holder(self, runtime_id: str) -> str | None:
        """The token holding `runtime_id` now, for tests that assert on state."""
        lease = self._live(runtime_id)
        return lease.token if lease is not None else None


class InMemoryOffsetStore:
    """Positions in a dict keyed by (consumer, stream)."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, str], str] = {}

    async def load(self, consumer: str, stream: str) -> str | None:
        return self._offsets.get((consumer, stream))

    async def save(self, consumer: str, stream: str, entry_id: str) -> None:
        self._offsets[(consumer, stream)] = entry_id


class InMemoryLeaseProbe:
    """Looks at an InMemoryLeaseStore."""

    def __init__(self, leases: InMemoryLeaseStore) -> None:
        self._leases = leases

    async def is_held(self, name: str) -> bool:
        return self._leases.holder(name) is not None
