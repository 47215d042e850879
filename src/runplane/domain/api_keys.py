"""API keys: scoped to one team, or admin keys that see every team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    key_hash: str
    team_id: str | None
    admin: bool
    name: str
    created_at: datetime

    def can_see(self, team_id: str) -> bool:
        return self.admin or self.team_id == team_id
