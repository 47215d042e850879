"""ApiKeyStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

import pytest

from runplane.domain.api_keys import ApiKey
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
)


def make_key(key_id: str = "k-1", team_id: str | None = "team-a", admin: bool = False) -> ApiKey:
    return ApiKey(key_id, f"sha256:{key_id}", team_id, admin, f"key {key_id}", T0)


class ApiKeyStoreContract:
    """Every ApiKeyStore backend passes these. A subclass mixes in a backend from
    tests.support.store_backends, which provides the `stores` fixture."""

    async def test_an_added_key_is_found_by_its_hash(self, stores: Stores) -> None:
        team_key, admin_key = make_key("k-1"), make_key("k-2", team_id=None, admin=True)
        await stores.api_keys.add(team_key)
        await stores.api_keys.add(admin_key)
        assert await stores.api_keys.find_by_hash("sha256:k-1") == team_key
        assert await stores.api_keys.find_by_hash("sha256:k-2") == admin_key

    async def test_an_unknown_hash_is_none(self, stores: Stores) -> None:
        assert await stores.api_keys.find_by_hash("sha256:nope") is None

    async def test_count(self, stores: Stores) -> None:
        assert await stores.api_keys.count() == 0
        await stores.api_keys.add(make_key("k-1"))
        await stores.api_keys.add(make_key("k-2"))
        assert await stores.api_keys.count() == 2

    async def test_a_taken_id_is_refused(self, stores: Stores) -> None:
        await stores.api_keys.add(make_key("k-1"))
        with pytest.raises(ValueError, match="already exists"):
            await stores.api_keys.add(make_key("k-1", team_id="team-b"))
        assert await stores.api_keys.count() == 1


class TestInMemoryApiKeyStore(InMemoryBackend, ApiKeyStoreContract):
    pass


class TestSqliteApiKeyStore(SqliteBackend, ApiKeyStoreContract):
    pass


class TestPostgresApiKeyStore(PostgresBackend, ApiKeyStoreContract):
    pass
