"""Per-runtime leases: who holds a runtime, and a look at whether anyone does."""

from __future__ import annotations

from typing import Protocol


class LeaseStore(Protocol):
    """Per-runtime mutual exclusion with a time bound (Redis SET NX PX)."""

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool: ...

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        """Extend the lease if `token` still holds it."""

    async def release(self, runtime_id: str, token: str) -> bool:
        """Delete the lease if `token` still holds it."""


class LeaseProbe(Protocol):
    """Looks at a lease without taking it."""

    async def is_held(self, name: str) -> bool:
        """Whether someone holds the lease `name` (a runtime id) right now."""
