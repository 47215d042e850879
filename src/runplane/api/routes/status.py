"""Liveness, readiness and metrics: what an orchestrator and Prometheus read.

`/healthz` and `/readyz` are open and say nothing of any tenant (a failed check
names the component and the kind of fault, never its message, which could carry
an address). `/metrics` takes the `metrics_token` setting or an admin key."""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from runplane.api.auth import Context, current_key
from runplane.api.errors import ApiError
from runplane.api.openapi import SECURITY_SCHEME
from runplane.api.schemas.errors import ErrorBody
from runplane.domain.errors import NotReady

logger = logging.getLogger(__name__)

router = APIRouter(tags=["status"])

_READY_TIMEOUT_S = 2.0


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Needs no key and checks nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a component is not usable"}},
)
async def readyz(ctx: Context) -> JSONResponse:
    """Readiness: each component this instance needs (database, Redis, driver)
    checked now; 503 with the same body when one is not usable. Needs no key."""
    checks: dict[str, str] = {}
    for name, check in ctx.readiness.items():
        try:
            await asyncio.wait_for(check(), _READY_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            logger.warning("readiness check failed", extra={"check": name}, exc_info=True)
            checks[name] = f"failed: {exc if isinstance(exc, NotReady) else type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def metrics_reader(request: Request, ctx: Context) -> None:
    """The metrics token, else an admin key: per-team counts are not for a team."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    expected = ctx.metrics_token
    if expected and scheme.lower() == "bearer" and _same(token, expected):
        return
    key = await current_key(request)
    if not key.admin:
        raise ApiError("forbidden", "/metrics needs the metrics token or an admin key", status=403)


def _same(token: str, expected: str) -> bool:
    return hmac.compare_digest(token.encode(), expected.encode())


_METRICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
    401: {"model": ErrorBody, "description": "no key, or not the metrics token"},
    403: {"model": ErrorBody, "description": "a team key"},
    503: {"model": ErrorBody, "description": "the database cannot check the key"},
}


@router.get(
    "/metrics",
    response_class=Response,
    responses=_METRICS_RESPONSES,
    dependencies=[Depends(metrics_reader)],
    openapi_extra={"security": [{SECURITY_SCHEME: []}]},
    operation_id="get_metrics",
)
async def metrics() -> Response:
    """Prometheus metrics in the text format. Takes the metrics token
    (RUNPLANE_METRICS_TOKEN) or an admin key as a bearer; a team key is 403."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
