"""Extension hooks (admin keys only): what this instance runs, and how far each
hook's consumer group has got on the events stream (docs/hooks.md)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from runplane.api.auth import AdminKey, Context
from runplane.api.errors import ApiError
from runplane.api.schemas.errors import ErrorBody
from runplane.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/hooks", tags=["hooks"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 500, 503)
}


class HookOut(BaseModel):
    name: str
    group: str
    target: str | None
    """`module:attribute`; null for a group this instance does not run."""
    origin: str | None
    """`entry point` or `settings`; null as for `target`."""
    consumers: int | None
    pending: int | None
    """Events delivered to the hook and not yet finished (failing ones included)."""
    lag: int | None
    """Events not yet delivered to the hook; null when Redis cannot tell."""
    last_delivered_id: str | None


class HookListOut(BaseModel):
    hooks: list[HookOut]


@router.get("", response_model=HookListOut, responses=_ERRORS, operation_id="list_hooks")
async def list_hooks(ctx: Context, _: AdminKey) -> HookListOut:
    """The hooks this instance runs, then any other hook group on the events
    stream (run elsewhere, or left behind by a hook no longer configured)."""
    if ctx.hooks is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "hooks are not configured")
    views = await ctx.hooks.list()
    return HookListOut(
        hooks=[
            HookOut(
                name=v.group.removeprefix("hook:"),
                group=v.group,
                target=v.spec.target if v.spec else None,
                origin=v.spec.origin if v.spec else None,
                consumers=v.state.consumers if v.state else None,
                pending=v.state.pending if v.state else None,
                lag=v.state.lag if v.state else None,
                last_delivered_id=v.state.last_delivered_id if v.state else None,
            )
            for v in views
        ]
    )
