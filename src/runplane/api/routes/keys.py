"""API keys: an admin key issues team or admin keys; the key is shown once."""

from __future__ import annotations

from fastapi import APIRouter

from runplane.api.auth import AdminKey, Context
from runplane.api.errors import ApiError
from runplane.api.schemas.runtimes import CreateKeyBody, KeyOut
from runplane.domain.errors import ErrorCode

router = APIRouter(tags=["keys"])


@router.post("/v1/keys", status_code=201, response_model=KeyOut)
async def create_key(body: CreateKeyBody, ctx: Context, _: AdminKey) -> KeyOut:
    if not body.admin and not body.team_id:
        raise ApiError(ErrorCode.INVALID_REQUEST, "a key needs a team_id unless it is admin")
    key, plaintext = await ctx.keys.issue(
        team_id=None if body.admin else body.team_id, admin=body.admin, name=body.name
    )
    return KeyOut(
        key_id=key.key_id,
        team_id=key.team_id,
        admin=key.admin,
        name=key.name,
        created_at=key.created_at,
        key=plaintext,
    )
