"""API keys: scoped to one team, or admin keys that see every team. A key may
expire; a revoked key keeps its row (for the audit trail) and opens nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from runplane.domain.errors import RunplaneError


class KeyState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    key_hash: str
    team_id: str | None
    admin: bool
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def can_see(self, team_id: str) -> bool:
        return self.admin or self.team_id == team_id

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return KeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyState.EXPIRED
        return KeyState.ACTIVE


@dataclass(frozen=True, slots=True)
class ApiKeyPage:
    keys: list[ApiKey]
    next_cursor: str | None


class RevokeOutcome(StrEnum):
    REVOKED = "revoked"
    ALREADY_REVOKED = "already_revoked"
    NOT_FOUND = "not_found"
    LAST_ADMIN_KEY = "last_admin_key"
    """Refused: no other active admin key would be left to manage the keys."""


@dataclass(frozen=True, slots=True)
class Revocation:
    outcome: RevokeOutcome
    key: ApiKey | None


class ApiKeyRejected(RunplaneError):
    """A known key that opens nothing (revoked or expired); the message says which.
    The API answers it 401 like an unknown key, only more helpfully."""

    def __init__(self, key_id: str, state: KeyState) -> None:
        super().__init__(f"API key {state}")
        self.key_id = key_id
        self.state = state
