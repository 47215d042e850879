"""Labels, timeouts, idle rules and activity over REST (issue 16). Each
answers only for a runtime the key can see: another team's is `not_found`,
as for every runtime route."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runplane.api.auth import Context, Key
from runplane.api.context import ApiContext
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS
from runplane.api.routes.runtimes import visible_record
from runplane.api.schemas.runtime_settings import PatchRuntimeBody, SetTimeoutBody
from runplane.api.schemas.runtimes import RuntimeOut
from runplane.domain.errors import ErrorCode
from runplane.domain.records import Keep
from runplane.domain.runtime_settings import IdleRule, OnTimeout, SettingsRefused
from runplane.services.runtime_ops.settings import RuntimeSettingsService

router = APIRouter(prefix="/v1", tags=["runtimes"])


def settings_of(ctx: ApiContext) -> RuntimeSettingsService:
    if ctx.runtime_settings is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "runtime settings are not available here")
    return ctx.runtime_settings


def refused(exc: SettingsRefused) -> ApiError:
    return ApiError(exc.code, exc.message)


@router.patch(
    "/runtimes/{runtime_id}",
    response_model=RuntimeOut,
    responses=ERRORS,
    operation_id="update_runtime",
)
async def patch_runtime(
    runtime_id: str, body: PatchRuntimeBody, ctx: Context, key: Key
) -> RuntimeOut:
    """Replace the labels and/or the idle rule (fields left out are kept;
    `idle: null` removes the rule). Not the spec: `POST .../patch` does that."""
    service = settings_of(ctx)
    record = await visible_record(ctx, key, runtime_id)
    given = body.model_fields_set
    labels: object = Keep.KEEP
    if "labels" in given:
        labels = body.labels or {}
    idle: IdleRule | Keep | None = Keep.KEEP
    if "idle" in given:
        idle = body.idle.rule() if body.idle is not None else None
    try:
        return RuntimeOut.of(await service.update(record, labels=labels, idle=idle))
    except SettingsRefused as exc:
        raise refused(exc) from exc


@router.post(
    "/runtimes/{runtime_id}/timeout",
    response_model=RuntimeOut,
    responses={
        **ERRORS,
        409: {"description": "`timeout_would_shorten`: earlier than the current deadline"},
    },
    operation_id="set_runtime_timeout",
)
async def set_timeout(runtime_id: str, body: SetTimeoutBody, ctx: Context, key: Key) -> RuntimeOut:
    """Set or extend the deadline to now + timeout_s (null: no deadline). A
    deadline earlier than the current one is refused with 409
    `timeout_would_shorten` unless `allow_shorten` is true."""
    service = settings_of(ctx)
    record = await visible_record(ctx, key, runtime_id)
    action = OnTimeout(body.on_timeout) if body.on_timeout is not None else None
    try:
        written = await service.set_timeout(
            record, timeout_s=body.timeout_s, allow_shorten=body.allow_shorten, on_timeout=action
        )
    except SettingsRefused as exc:
        raise refused(exc) from exc
    return RuntimeOut.of(written)


@router.post(
    "/runtimes/{runtime_id}/activity",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    operation_id="report_runtime_activity",
)
async def report_activity(runtime_id: str, ctx: Context, key: Key) -> Response:
    """The runtime is busy: its idle clock starts again."""
    service = settings_of(ctx)
    await service.activity(await visible_record(ctx, key, runtime_id))
    return Response(status_code=204)
