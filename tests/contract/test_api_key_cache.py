"""ApiKeys' in-memory cache of verified keys, over every store backend: two
ApiKeys on one store stand for two instances on one database. A revoked key
stops opening the instance that revoked it at once, and any other one once its
cache bound has passed; expiry holds on every request; unknown keys are never
cached, so a key issued anywhere works everywhere at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runplane.domain.api_keys import ApiKeyRejected, KeyState
from runplane.services.api_keys import ApiKeys
from tests.support.clock import FakeClock
from tests.support.store_backends import InMemoryBackend, PostgresBackend, SqliteBackend, Stores

BOUND_S = 1.0


class CountingReads:
    """The store, counting find_by_hash calls (what the cache saves)."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def find_by_hash(self, key_hash: str) -> object:
        self.reads += 1
        return await self.store.find_by_hash(key_hash)  # type: ignore[attr-defined]


class ApiKeyCacheContract:
    async def test_a_key_revoked_elsewhere_stops_working_within_the_bound(
        self, stores: Stores
    ) -> None:
        clock = FakeClock()
        here = ApiKeys(stores.api_keys, clock, cache_s=BOUND_S)
        elsewhere = ApiKeys(stores.api_keys, clock, cache_s=BOUND_S)
        key, plaintext = await elsewhere.issue(team_id="alpha", admin=False)
        assert await here.authenticate(plaintext) == key
        await elsewhere.revoke(key.key_id)
        with pytest.raises(ApiKeyRejected):
            await elsewhere.authenticate(plaintext)  # the revoking instance: at once
        clock.advance(BOUND_S)
        with pytest.raises(ApiKeyRejected) as rejected:
            await here.authenticate(plaintext)  # the other: once the bound has passed
        assert rejected.value.state is KeyState.REVOKED

    async def test_a_key_revoked_here_stops_working_here_at_once(self, stores: Stores) -> None:
        keys = ApiKeys(stores.api_keys, FakeClock(), cache_s=BOUND_S)
        key, plaintext = await keys.issue(team_id="alpha", admin=False)
        assert await keys.authenticate(plaintext) == key
        await keys.revoke(key.key_id)
        with pytest.raises(ApiKeyRejected):
            await keys.authenticate(plaintext)

    async def test_a_cached_key_still_expires_on_time(self, stores: Stores) -> None:
        clock = FakeClock()
        keys = ApiKeys(stores.api_keys, clock, cache_s=60)
        expires_at = clock.now() + timedelta(seconds=10)
        key, plaintext = await keys.issue(team_id="alpha", admin=False, expires_at=expires_at)
        assert await keys.authenticate(plaintext) == key
        clock.advance(10)
        with pytest.raises(ApiKeyRejected) as rejected:
            await keys.authenticate(plaintext)
        assert rejected.value.state is KeyState.EXPIRED

    async def test_a_key_issued_elsewhere_works_at_once(self, stores: Stores) -> None:
        clock = FakeClock()
        here = ApiKeys(stores.api_keys, clock, cache_s=BOUND_S)
        elsewhere = ApiKeys(stores.api_keys, clock, cache_s=BOUND_S)
        assert await here.authenticate("rp_not-issued-yet") is None
        key, plaintext = await elsewhere.issue(team_id="alpha", admin=False)
        assert await here.authenticate(plaintext) == key

    async def test_requests_within_the_bound_read_the_store_once(self, stores: Stores) -> None:
        clock = FakeClock()
        counting = CountingReads(stores.api_keys)
        keys = ApiKeys(counting, clock, cache_s=BOUND_S)  # type: ignore[arg-type]
        _, plaintext = await keys.issue(team_id="alpha", admin=False)
        for _ in range(5):
            assert await keys.authenticate(plaintext) is not None
        assert counting.reads == 1
        clock.advance(BOUND_S)
        assert await keys.authenticate(plaintext) is not None
        assert counting.reads == 2

    async def test_no_cache_reads_every_time(self, stores: Stores) -> None:
        counting = CountingReads(stores.api_keys)
        keys = ApiKeys(counting, FakeClock(), cache_s=0)  # type: ignore[arg-type]
        _, plaintext = await keys.issue(team_id="alpha", admin=False)
        for _ in range(3):
            assert await keys.authenticate(plaintext) is not None
        assert counting.reads == 3


class TestInMemory(InMemoryBackend, ApiKeyCacheContract):
    pass


class TestSqlite(SqliteBackend, ApiKeyCacheContract):
    pass


class TestPostgres(PostgresBackend, ApiKeyCacheContract):
    pass
