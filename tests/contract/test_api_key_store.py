"""ApiKeyStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from runplane.domain.api_keys import ApiKey, KeyState, RevokeOutcome
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
)


def make_key(
    key_id: str = "k-1",
    team_id: str | None = "team-a",
    admin: bool = False,
    expires_at: datetime | None = None,
) -> ApiKey:
    return ApiKey(key_id, f"sha256:{key_id}", team_id, admin, f"key {key_id}", T0, expires_at)


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

    async def test_expiry_is_kept(self, stores: Stores) -> None:
        key = make_key("k-1", expires_at=T0 + timedelta(days=30))
        await stores.api_keys.add(key)
        assert await stores.api_keys.get("k-1") == key
        assert key.state(T0 + timedelta(days=31)) is KeyState.EXPIRED

    async def test_list_pages_by_key_id_and_filters_by_team(self, stores: Stores) -> None:
        for key_id, team in (("k-3", "team-a"), ("k-1", "team-b"), ("k-2", "team-a")):
            await stores.api_keys.add(make_key(key_id, team_id=team))
        await stores.api_keys.add(make_key("k-0", team_id=None, admin=True))
        first = await stores.api_keys.list(limit=2)
        assert [k.key_id for k in first.keys] == ["k-0", "k-1"]
        assert first.next_cursor == "k-1"
        rest = await stores.api_keys.list(after=first.next_cursor, limit=2)
        assert [k.key_id for k in rest.keys] == ["k-2", "k-3"]
        assert rest.next_cursor is None
        team_a = await stores.api_keys.list(team_id="team-a")
        assert [k.key_id for k in team_a.keys] == ["k-2", "k-3"]

    async def test_revoke_keeps_the_row_and_stamps_it_once(self, stores: Stores) -> None:
        await stores.api_keys.add(make_key("k-1"))
        revoked = await stores.api_keys.revoke("k-1", T0 + timedelta(hours=1))
        assert revoked.outcome is RevokeOutcome.REVOKED
        assert revoked.key is not None
        assert revoked.key.revoked_at == T0 + timedelta(hours=1)
        stored = await stores.api_keys.find_by_hash("sha256:k-1")
        assert stored == revoked.key
        assert stored.state(T0 + timedelta(hours=1)) is KeyState.REVOKED
        again = await stores.api_keys.revoke("k-1", T0 + timedelta(hours=2))
        assert again.outcome is RevokeOutcome.ALREADY_REVOKED
        assert again.key == revoked.key

    async def test_an_unknown_key_is_not_found(self, stores: Stores) -> None:
        revocation = await stores.api_keys.revoke("k-nope", T0)
        assert revocation.outcome is RevokeOutcome.NOT_FOUND
        assert revocation.key is None

    async def test_the_last_active_admin_key_is_not_revoked(self, stores: Stores) -> None:
        await stores.api_keys.add(make_key("k-admin", team_id=None, admin=True))
        expired = make_key("k-old", team_id=None, admin=True, expires_at=T0 + timedelta(1))
        await stores.api_keys.add(expired)
        later = T0 + timedelta(days=2)
        refused = await stores.api_keys.revoke("k-admin", later)
        assert refused.outcome is RevokeOutcome.LAST_ADMIN_KEY
        stored = await stores.api_keys.get("k-admin")
        assert stored is not None
        assert stored.revoked_at is None
        await stores.api_keys.add(make_key("k-new", team_id=None, admin=True))
        assert (await stores.api_keys.revoke("k-admin", later)).outcome is RevokeOutcome.REVOKED
        last = await stores.api_keys.revoke("k-new", later)
        assert last.outcome is RevokeOutcome.LAST_ADMIN_KEY

    async def test_two_revocations_racing_leave_one_admin_key(self, stores: Stores) -> None:
        for key_id in ("k-a", "k-b"):
            await stores.api_keys.add(make_key(key_id, team_id=None, admin=True))
        first, second = await asyncio.gather(
            stores.api_keys.revoke("k-a", T0), stores.api_keys.revoke("k-b", T0)
        )
        outcomes = sorted([first.outcome, second.outcome])
        assert outcomes == sorted([RevokeOutcome.REVOKED, RevokeOutcome.LAST_ADMIN_KEY])
        page = await stores.api_keys.list()
        assert [k.state(T0) for k in page.keys].count(KeyState.ACTIVE) == 1


class TestInMemoryApiKeyStore(InMemoryBackend, ApiKeyStoreContract):
    pass


class TestSqliteApiKeyStore(SqliteBackend, ApiKeyStoreContract):
    pass


class TestPostgresApiKeyStore(PostgresBackend, ApiKeyStoreContract):
    pass
