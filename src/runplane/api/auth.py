"""Bearer API keys: every /v1 call carries one; team keys see only their team."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runplane.api.context import ApiContext
from runplane.api.errors import ApiError
from runplane.api.limits import Outage, RateLimited
from runplane.domain.api_keys import ApiKey
from runplane.domain.errors import StoreUnavailable


def context_of(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def current_key(request: Request) -> ApiKey:
    key = await authenticated(context_of(request), request.headers.get("authorization", ""))
    request.state.api_key = key
    await charge(request, key)
    return key


async def authenticated(ctx: ApiContext, authorization: str) -> ApiKey:
    """The key an `Authorization` header's value names; 401 `unauthorized` if none."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            "unauthorized", "missing API key: send Authorization: Bearer <key>", status=401
        )
    key = await ctx.keys.authenticate(token.strip())
    if key is None:
        raise ApiError("unauthorized", "unknown API key", status=401)
    return key


async def charge(request: Request, key: ApiKey) -> None:
    await charged(context_of(request), request.app.state.rate_limit_outage, key)


async def charged(ctx: ApiContext, outage: Outage, key: ApiKey) -> None:
    """Take one request from the key's budget, shared by every instance; admin
    keys are exempt. Fails open: while Redis is unreachable nothing is limited
    (a warning says so), as an outage must not turn every call into an error."""
    limits = ctx.limits
    if ctx.rate_limiter is None or key.admin or limits.rate_limit_per_s <= 0 or outage.active():
        return
    try:
        wait_s = await ctx.rate_limiter.take(
            key.key_id, limits.rate_limit_per_s, limits.rate_limit_burst
        )
    except StoreUnavailable as exc:
        outage.begin(exc)
        return
    if wait_s > 0:
        raise RateLimited(
            f"this key is over its rate limit of {limits.rate_limit_per_s:g} requests/s "
            f"(burst {limits.rate_limit_burst})",
            wait_s,
        )


async def admin_key(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
    if not key.admin:
        raise ApiError("forbidden", "this call needs an admin key", status=403)
    return key


def team_scope(key: ApiKey) -> str | None:
    """None for admin keys (every team), else the key's team."""
    return None if key.admin else key.team_id


Key = Annotated[ApiKey, Depends(current_key)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]


async def _context(request: Request) -> ApiContext:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hand-off on every request for a field lookup.
    return context_of(request)


Context = Annotated[ApiContext, Depends(_context)]
