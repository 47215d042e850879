"""TeamPolicyStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

import pytest

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.team_policies import SqlTeamPolicyStore
from runplane.domain.policy import TeamPolicy
from runplane.ports.team_policies import TeamPolicyStore
from runplane.testing.team_policies import InMemoryTeamPolicyStore
from tests.support.store_backends import InMemoryBackend, PostgresBackend, SqliteBackend, Stores

POLICY = TeamPolicy(
    commands=(("/bin/sleep", "*"), ("/usr/bin/python3", "/srv/*.py", "...")),
    images=("docker.io/library/nginx:*",),
    networks=("alpha-net",),
    max_runtimes=10,
    max_running=3,
)


class TeamPolicyStoreContract:
    """A subclass provides `policies` on a backend whose `stores` fixture empties it."""

    async def test_a_team_without_a_policy_has_none(self, policies: TeamPolicyStore) -> None:
        assert await policies.get("alpha") is None

    async def test_a_put_policy_comes_back_whole(self, policies: TeamPolicyStore) -> None:
        await policies.put("alpha", POLICY)
        await policies.put("beta", TeamPolicy())
        assert await policies.get("alpha") == POLICY
        assert await policies.get("beta") == TeamPolicy()

    async def test_a_put_replaces_the_whole_policy(self, policies: TeamPolicyStore) -> None:
        await policies.put("alpha", POLICY)
        await policies.put("alpha", TeamPolicy(max_running=1))
        assert await policies.get("alpha") == TeamPolicy(max_running=1)

    async def test_delete_removes_it_once(self, policies: TeamPolicyStore) -> None:
        await policies.put("alpha", POLICY)
        await policies.put("beta", POLICY)
        assert await policies.delete("alpha") is True
        assert await policies.delete("alpha") is False
        assert await policies.get("alpha") is None
        assert await policies.get("beta") == POLICY


class TestInMemoryTeamPolicyStore(InMemoryBackend, TeamPolicyStoreContract):
    @pytest.fixture
    def policies(self) -> TeamPolicyStore:
        return InMemoryTeamPolicyStore()


class TestSqliteTeamPolicyStore(SqliteBackend, TeamPolicyStoreContract):
    @pytest.fixture
    def policies(self, stores: Stores, database: SqlDatabase) -> TeamPolicyStore:
        return SqlTeamPolicyStore(database)  # `stores` emptied every table first


class TestPostgresTeamPolicyStore(PostgresBackend, TeamPolicyStoreContract):
    @pytest.fixture
    def policies(self, stores: Stores, database: SqlDatabase) -> TeamPolicyStore:
        return SqlTeamPolicyStore(database)
