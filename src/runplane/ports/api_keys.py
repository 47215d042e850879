"""API keys, stored by hash."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from runplane.domain.api_keys import ApiKey, ApiKeyPage, Revocation


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        """Revoked and expired keys included: the caller says why one opens nothing."""
        ...

    async def list(
        self, *, team_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> ApiKeyPage:
        """Ordered by key_id; `next_cursor` is the page's last key_id when more follow."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> Revocation:
        """Sets `revoked_at` once. Refuses (LAST_ADMIN_KEY) to revoke an admin key
        when no other admin key is active at `at`, atomically with the write."""
        ...

    async def count(self) -> int: ...
