"""API keys, stored by hash."""

from __future__ import annotations

from typing import Protocol

from runplane.domain.api_keys import ApiKey


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def find_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def count(self) -> int: ...
