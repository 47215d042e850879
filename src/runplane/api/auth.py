"""Bearer API keys: every /v1 call carries one; team keys see only their team."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runplane.api.context import ApiContext
from runplane.api.errors import ApiError
from runplane.domain.api_keys import ApiKey


def context_of(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def current_key(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            "unauthorized", "missing API key: send Authorization: Bearer <key>", status=401
        )
    key = await context_of(request).keys.authenticate(token.strip())
    if key is None:
        raise ApiError("unauthorized", "unknown API key", status=401)
    request.state.api_key = key
    return key


async def admin_key(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
    if not key.admin:
        raise ApiError("forbidden", "this call needs an admin key", status=403)
    return key


def team_scope(key: ApiKey) -> str | None:
    """None for admin keys (every team), else the key's team."""
    return None if key.admin else key.team_id


Key = Annotated[ApiKey, Depends(current_key)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]
Context = Annotated[ApiContext, Depends(context_of)]
