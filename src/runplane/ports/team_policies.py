"""Team policies: what each team's keys may run, and its quotas."""

from __future__ import annotations

from typing import Protocol

from runplane.domain.policy import TeamPolicy


class TeamPolicyStore(Protocol):
    async def get(self, team_id: str) -> TeamPolicy | None:
        """The team's policy; None when an admin has set none (deny by default)."""

    async def put(self, team_id: str, policy: TeamPolicy) -> None:
        """Set (or replace) the team's policy."""

    async def delete(self, team_id: str) -> bool:
        """Remove the team's policy; False when it had none."""
