"""The seven operations over REST, and the operation log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header

from runplane.api.auth import Context, Key, team_scope
from runplane.api.errors import ApiError
from runplane.api.schemas.runtimes import (
    ErrorBody,
    OperationBody,
    OperationEntryOut,
    OperationListOut,
    OperationResultOut,
)
from runplane.domain.api_keys import ApiKey
from runplane.domain.documents import is_valid_idempotency_key
from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource, StopReason
from runplane.domain.results import OperationResult
from runplane.services.lifecycle.requests import OperationRequest

router = APIRouter(prefix="/v1", tags=["operations"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 500, 503)
}
IDEMPOTENCY_KEY_RULE = "1-256 printable ASCII characters, no spaces"


async def checked_idempotency_key(
    value: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"The call's job_id, unique in the caller's team: {IDEMPOTENCY_KEY_RULE}",
            json_schema_extra={"pattern": "^[!-~]{1,256}$", "minLength": 1, "maxLength": 256},
        ),
    ] = None,
) -> str | None:
    """The Idempotency-Key header, checked here (not by the schema) to answer
    one clear message; an empty one is refused, never taken as the job id ""."""
    if value is not None and not is_valid_idempotency_key(value):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Idempotency-Key must be {IDEMPOTENCY_KEY_RULE}")
    return value


IdempotencyKey = Annotated[str | None, Depends(checked_idempotency_key)]


def answer(result: OperationResult) -> OperationResultOut:
    """200 with the result for a success (replay_no_op included), else the error body."""
    if result.ok:
        return OperationResultOut.of(result)
    code = result.error_code or ErrorCode.INTERNAL
    raise ApiError(code, result.error_message, operation_id=result.operation_id)


def request_for(
    op: OpKind, runtime_id: str, key: ApiKey, body: OperationBody | None, job_id: str | None
) -> OperationRequest:
    body = body or OperationBody()
    reason = body.reason or (StopReason.REQUESTED.value if op is OpKind.STOP else "")
    return OperationRequest(
        runtime_id=runtime_id,
        op_source=OpSource.REST,
        job_id=job_id,
        reason=reason,
        actor=key.key_id,
        team_scope=team_scope(key),
        spec=body.spec,
        restricted=not key.admin,
    )


async def _operate(
    op: OpKind,
    runtime_id: str,
    ctx: Context,
    key: Key,
    body: OperationBody | None,
    job_id: str | None,
) -> OperationResultOut:
    request = request_for(op, runtime_id, key, body, job_id)
    return answer(await ctx.lifecycle[op].handle(request))


OPERATION_DESCRIPTIONS: dict[OpKind, str] = {
    OpKind.START: "Start the runtime (from pending, stopped, removed or error); `spec`, "
    "when given, replaces its spec first.",
    OpKind.STOP: "Stop the runtime: its stop signal, then a kill after stop_timeout_s. "
    f"`reason` is one of {', '.join(StopReason)} (default requested).",
    OpKind.RESTART: "Stop the running runtime and start it again on the same spec.",
    OpKind.PATCH: "Replace the running runtime's `spec` (required) and restart it on it; "
    "the same spec again is a replay.",
    OpKind.PAUSE: "Freeze the running runtime's processes (or container) where they are.",
    OpKind.RESUME: "Let the paused runtime run on from where it was paused.",
}
_OPERATION_ANSWER = (
    "\n\n200 with the result and the runtime's record (a repeat of an Idempotency-Key, "
    "or a runtime already there, answers the first result: `replay_no_op`); 409 "
    "`invalid_state` from a status the operation cannot leave; a failure of the "
    "driver answers its error with the operation-log entry's `operation_id`."
)


def _route(op: OpKind) -> None:
    async def endpoint(
        runtime_id: str,
        ctx: Context,
        key: Key,
        idempotency_key: IdempotencyKey,
        body: OperationBody | None = None,
    ) -> OperationResultOut:
        return await _operate(op, runtime_id, ctx, key, body, idempotency_key)

    endpoint.__name__ = f"{op}_runtime"
    router.add_api_route(
        f"/runtimes/{{runtime_id}}/{op}",
        endpoint,
        methods=["POST"],
        response_model=OperationResultOut,
        responses=ERRORS,
        summary=f"{op} a runtime",
        description=OPERATION_DESCRIPTIONS[op] + _OPERATION_ANSWER,
    )


ROUTED_OPS = (OpKind.START, OpKind.STOP, OpKind.RESTART, OpKind.PATCH, OpKind.PAUSE, OpKind.RESUME)
"""The operations at `POST /v1/runtimes/{runtime_id}/{op}` (api/fast_ops.py answers them too)."""

for _op in ROUTED_OPS:
    _route(_op)


@router.delete("/runtimes/{runtime_id}", response_model=OperationResultOut, responses=ERRORS)
async def remove_runtime(
    runtime_id: str, ctx: Context, key: Key, idempotency_key: IdempotencyKey
) -> OperationResultOut:
    """Remove the runtime: stop it if it runs, then delete its process or
    container. The record stays, in status `removed`, and may be started again."""
    return await _operate(OpKind.REMOVE, runtime_id, ctx, key, None, idempotency_key)


@router.get(
    "/runtimes/{runtime_id}/operations",
    response_model=OperationListOut,
    operation_id="list_runtime_operations",
)
async def list_operations(
    runtime_id: str, ctx: Context, key: Key, limit: int = 100
) -> OperationListOut:
    """The runtime's operations, newest first. A team key sees its team's calls
    only: an admin's or the system's call on the runtime is logged in its team,
    another team's refused call in that other team."""
    record = await ctx.runtimes.get(runtime_id)
    if record is None or not key.can_see(record.team_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such runtime")
    entries = await ctx.operations.list_for_runtime(
        runtime_id, team_id=team_scope(key), limit=max(1, min(limit, 1000))
    )
    return OperationListOut(operations=[OperationEntryOut.of(e) for e in entries])


@router.get("/operations/{operation_id}", response_model=OperationEntryOut)
async def get_operation(operation_id: str, ctx: Context, key: Key) -> OperationEntryOut:
    """One entry: a team key sees its own team's entries only."""
    entry = await ctx.operations.get(operation_id)
    if entry is None or not (key.admin or entry.team_id == key.team_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such operation")
    return OperationEntryOut.of(entry)
