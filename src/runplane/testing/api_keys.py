"""InMemoryApiKeyStore: the dict-backed ApiKeyStore, proved beside the SQL store
by tests/contract/test_api_key_store.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from runplane.domain.api_keys import ApiKey, ApiKeyPage, KeyState, Revocation, RevokeOutcome


class InMemoryApiKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    async def add(self, key: ApiKey) -> None:
        """Raises ValueError when the key's id or hash is already stored."""
        if key.key_id in self._keys or await self.find_by_hash(key.key_hash) is not None:
            raise ValueError(f"api key {key.key_id!r} (or its hash) already exists")
        self._keys[key.key_id] = key

    async def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        found = (key for key in self._keys.values() if key.key_hash == key_hash)
        return next(found, None)

    async def list(
        self, *, team_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> ApiKeyPage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        keys = sorted(
            (
                key
                for key in self._keys.values()
                if (team_id is None or key.team_id == team_id)
                and (after is None or key.key_id > after)
            ),
            key=lambda key: key.key_id,
        )
        page = keys[:limit]
        return ApiKeyPage(page, page[-1].key_id if len(keys) > limit else None)

    async def revoke(self, key_id: str, at: datetime) -> Revocation:
        key = self._keys.get(key_id)
        if key is None:
            return Revocation(RevokeOutcome.NOT_FOUND, None)
        if key.revoked_at is not None:
            return Revocation(RevokeOutcome.ALREADY_REVOKED, key)
        others_active = any(
            other.admin and other.state(at) is KeyState.ACTIVE
            for other in self._keys.values()
            if other.key_id != key_id
        )
        if key.admin and not others_active:
            return Revocation(RevokeOutcome.LAST_ADMIN_KEY, key)
        revoked = replace(key, revoked_at=at)
        self._keys[key_id] = revoked
        return Revocation(RevokeOutcome.REVOKED, revoked)

    async def count(self) -> int:
        return len(self._keys)
