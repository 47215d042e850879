"""Issuing, checking, listing and revoking API keys. Keys are 32 random bytes, so a
plain SHA-256 of the key is a safe stored form (no slow hash needed against
guessing).

A key found in the store is kept in memory for `cache_s` (1 s by default) so
that a busy client does not cost a database read per request. The bound this
puts on revocation: a key revoked through this instance stops working here at
once (its entry is dropped); through another instance, here within `cache_s`.
Expiry is checked against the clock on every request, cached or not. Unknown
keys are never cached: a key issued on another instance works here at once."""

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
DEFAULT_CACHE_S = 1.0
MAX_CACHED_KEYS = 10_000
"""Past this many cached keys the cache starts over: memory stays bounded
whatever number of keys a deployment has."""
"""Ten years: a longer expiry is a typo, and a key that should never expire has none."""


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeys:
    def __init__(
        self, store: ApiKeyStore, clock: Clock, *, cache_s: float = DEFAULT_CACHE_S
    ) -> None:
        self.store = store
        self.clock = clock
        self.cache_for = timedelta(seconds=cache_s)
        self._cache: dict[str, tuple[ApiKey, datetime]] = {}
        """key hash -> (the key as read, when it was read)"""

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
        key_hash = hash_key(plaintext)
        now = self.clock.now()
        key = self._cached(key_hash, now)
        if key is None:
            key = await self.store.find_by_hash(key_hash)
            if key is None:
                return None
            self._remember(key, now)
        state = key.state(now)
        if state is not KeyState.ACTIVE:
            raise ApiKeyRejected(key.key_id, state)
        return key

    def _cached(self, key_hash: str, now: datetime) -> ApiKey | None:
        entry = self._cache.get(key_hash)
        if entry is None:
            return None
        key, read_at = entry
        # A clock set back (read_at in the future) also forces a read.
        if not timedelta(0) <= now - read_at < self.cache_for:
            del self._cache[key_hash]
            return None
        return key

    def _remember(self, key: ApiKey, now: datetime) -> None:
        if not self.cache_for:
            return
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[key.key_hash] = (key, now)

    async def list(
        self, *, team_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> ApiKeyPage:
        return await self.store.list(team_id=team_id, after=after, limit=limit)

    async def revoke(self, key_id: str) -> Revocation:
        revocation = await self.store.revoke(key_id, self.clock.now())
        # Dropped whatever the outcome: the next request reads the stored state.
        for key_hash in [h for h, (k, _) in self._cache.items() if k.key_id == key_id]:
            del self._cache[key_hash]
        return revocation


def check_expiry(expires_at: datetime, now: datetime) -> None:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if expires_at <= now:
        raise ValueError("expires_at is in the past")
    if expires_at - now > MAX_KEY_LIFETIME:
        raise ValueError("expires_at is more than ten years away")
