"""Issuing and checking API keys. Keys are 32 random bytes, so a plain SHA-256 of
the key is a safe stored form (no slow hash needed against guessing)."""

from __future__ import annotations

import hashlib
import secrets

from runplane.domain.api_keys import ApiKey
from runplane.ports.api_keys import ApiKeyStore
from runplane.ports.system import Clock

KEY_PREFIX = "rp_"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeys:
    def __init__(self, store: ApiKeyStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def issue(
        self, *, team_id: str | None, admin: bool, name: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never stored."""
        if not admin and not team_id:
            raise ValueError("a key is scoped to a team unless it is an admin key")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            key_id="key_" + secrets.token_hex(6),
            key_hash=hash_key(plaintext),
            team_id=team_id,
            admin=admin,
            name=name,
            created_at=self.clock.now(),
        )
        await self.store.add(key)
        return key, plaintext

    async def authenticate(self, plaintext: str) -> ApiKey | None:
        if not plaintext.startswith(KEY_PREFIX):
            return None
        return await self.store.find_by_hash(hash_key(plaintext))
