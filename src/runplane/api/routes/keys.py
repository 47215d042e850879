"""API keys: an admin key issues, lists and revokes team or admin keys; a new
key's plaintext is shown once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from runplane.api.auth import AdminKey, Context
from runplane.api.errors import ApiError
from runplane.api.schemas.errors import ErrorBody
from runplane.api.schemas.keys import CreateKeyBody, KeyListOut, KeyOut
from runplane.domain.api_keys import RevokeOutcome
from runplane.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/keys", tags=["keys"])

_LAST_ADMIN: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorBody, "description": "the last active admin key"}
}


@router.post("", status_code=201, response_model=KeyOut)
async def create_key(body: CreateKeyBody, ctx: Context, _: AdminKey) -> KeyOut:
    """201 with the key; `key`, the plaintext, is in this answer and never again."""
    if not body.admin and not body.team_id:
        raise ApiError(ErrorCode.INVALID_REQUEST, "a key needs a team_id unless it is admin")
    if body.admin and body.team_id:
        raise ApiError(ErrorCode.INVALID_REQUEST, "an admin key has no team_id")
    if body.expires_in_s is not None and body.expires_at is not None:
        raise ApiError(ErrorCode.INVALID_REQUEST, "give expires_in_s or expires_at, not both")
    now = ctx.keys.clock.now()
    expires_at: datetime | None = body.expires_at
    if body.expires_in_s is not None:
        expires_at = now + timedelta(seconds=body.expires_in_s)
    try:
        key, plaintext = await ctx.keys.issue(
            team_id=body.team_id, admin=body.admin, name=body.name, expires_at=expires_at
        )
    except ValueError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    return KeyOut.of(key, now, plaintext)


@router.get("", response_model=KeyListOut)
async def list_keys(
    ctx: Context,
    _: AdminKey,
    team_id: str | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> KeyListOut:
    """Every key, revoked and expired ones included (see `state`), by key_id."""
    page = await ctx.keys.list(team_id=team_id, after=cursor, limit=limit)
    now = ctx.keys.clock.now()
    return KeyListOut(keys=[KeyOut.of(k, now) for k in page.keys], next_cursor=page.next_cursor)


@router.delete("/{key_id}", response_model=KeyOut, responses=_LAST_ADMIN)
async def revoke_key(key_id: str, ctx: Context, _: AdminKey) -> KeyOut:
    """Revokes the key at once, on every instance; its row stays (state `revoked`).
    Revoking a revoked key answers it again. The last active admin key is refused
    (409): revoking it would leave no key that can manage keys."""
    revocation = await ctx.keys.revoke(key_id)
    if revocation.outcome is RevokeOutcome.NOT_FOUND or revocation.key is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such key")
    if revocation.outcome is RevokeOutcome.LAST_ADMIN_KEY:
        raise ApiError(
            ErrorCode.CONFLICT,
            "this is the last active admin key: create another admin key first",
        )
    return KeyOut.of(revocation.key, ctx.keys.clock.now())
