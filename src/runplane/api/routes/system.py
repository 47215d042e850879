"""Liveness, readiness, metrics and key management."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runplane.api.auth import AdminKey, Context
from runplane.api.errors import ApiError
from runplane.api.schemas.runtimes import CreateKeyBody, KeyOut
from runplane.domain.errors import ErrorCode

router = APIRouter(tags=["system"])

_READY_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Context) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in ctx.readiness.items():
        try:
            await asyncio.wait_for(check(), _READY_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"failed: {type(exc).__name__}: {exc}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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
