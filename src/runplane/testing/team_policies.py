"""A dict-backed TeamPolicyStore (tests/contract/test_team_policy_store.py)."""

from __future__ import annotations

from runplane.domain.policy import TeamPolicy


class InMemoryTeamPolicyStore:
    def __init__(self) -> None:
        self._policies: dict[str, TeamPolicy] = {}

    async def get(self, team_id: str) -> TeamPolicy | None:
        return self._policies.get(team_id)

    async def put(self, team_id: str, policy: TeamPolicy) -> None:
        self._policies[team_id] = policy

    async def delete(self, team_id: str) -> bool:
        return self._policies.pop(team_id, None) is not None
