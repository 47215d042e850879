"""Issuing, checking, listing and revoking API keys. Keys are 32 random bytes, so a
plain SHA-256 of the key is a safe stored form (no slow hash needed against
guessing). Every check reads the store, so a revocation or an expiry holds at
once on every instance."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from runplane.domain.api_keys import (
    ApiKey,
    ApiKeyPage,
    ApiKeyRejected,
    KeyState,
    Revocation,
)
from runplane.ports.api_keys import ApiKeyStore
from runplane.ports.system import Clock

KEY_PREFIX = "rp_"
MAX_KEY_LIFETIME = timedelta(days=3660)
"""Ten years: a longer expiry is a typo, and a key that should never expire has none."""


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeys:
    def __init__(self, store: ApiKeyStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def issue(
        self,
        *,
        team_id: str | None,
        admin: bool,
        name: str = "",
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never stored.
        Raises ValueError for a key without a team or an expiry out of range."""
        if not admin and not team_id:
            raise ValueError("a key is scoped to a team unless it is an admin key")
        now = self.clock.now()
        if expires_at is not None:
            check_expiry(expires_at, now)
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            key_id="key_" + secrets.token_hex(6),
            key_hash=hash_key(plaintext),
            team_id=team_id,
            admin=admin,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        await self.store.add(key)
        return key, plaintext

    async def authenticate(self, plaintext: str) -> ApiKey | None:
        """The key, None for an unknown one; raises ApiKeyRejected for a key that
        was revoked or has expired."""
        if not plaintext.startswith(KEY_PREFIX):
            return None
        key = await self.store.find_by_hash(hash_key(plaintext))
        if key is None:
            return None
        state = key.state(self.clock.now())
        if state is not KeyState.ACTIVE:
            raise ApiKeyRejected(key.key_id, state)
        return key

    async def list(
        self, *, team_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> ApiKeyPage:
        return await self.store.list(team_id=team_id, after=after, limit=limit)

    async def revoke(self, key_id: str) -> Revocation:
        return await self.store.revoke(key_id, self.clock.now())


def check_expiry(expires_at: datetime, now: datetime) -> None:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if expires_at <= now:
        raise ValueError("expires_at is in the past")
    if expires_at - now > MAX_KEY_LIFETIME:
        raise ValueError("expires_at is more than ten years away")
