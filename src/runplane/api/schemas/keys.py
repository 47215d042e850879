"""Bodies of /v1/keys. A key's hash never leaves the server; its plaintext leaves
it once, in the answer that created it."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from runplane.domain.api_keys import ApiKey, KeyState
from runplane.services.api_keys import MAX_KEY_LIFETIME

MAX_EXPIRES_IN_S = int(MAX_KEY_LIFETIME.total_seconds())


class CreateKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    admin: StrictBool = False
    name: str = Field(default="", max_length=128)
    expires_in_s: int | None = Field(
        default=None, ge=1, le=MAX_EXPIRES_IN_S, description="the key expires this long from now"
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="the key expires then (RFC 3339 with a zone)"
    )


class KeyOut(BaseModel):
    key_id: str
    team_id: str | None
    admin: bool
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: KeyState
    key: str | None = Field(
        default=None, description="the plaintext key: only in the answer that created it"
    )

    @classmethod
    def of(cls, key: ApiKey, now: datetime, plaintext: str | None = None) -> KeyOut:
        return cls(
            key_id=key.key_id,
            team_id=key.team_id,
            admin=key.admin,
            name=key.name,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            state=key.state(now),
            key=plaintext,
        )


class KeyListOut(BaseModel):
    keys: list[KeyOut]
    next_cursor: str | None
