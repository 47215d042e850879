"""Runtime records over REST: create, list, get, wait."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from runplane.api.auth import Context, Key, team_scope
from runplane.api.concurrency import KeySlots, SharedReads
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS, IdempotencyKey
from runplane.api.schemas.runtimes import CreateRuntimeBody, RuntimeListOut, RuntimeOut
from runplane.domain.api_keys import ApiKey
from runplane.domain.documents import is_valid_team_id
from runplane.domain.errors import ErrorCode
from runplane.domain.hosts import HOST_ID_RULE, is_valid_host_id
from runplane.domain.operations import OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.runtime_settings import SettingsRefused, parse_selector
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import TEAM_ID_RULE, CreateRequest

router = APIRouter(prefix="/v1", tags=["runtimes"])

_WAIT_SLEEP_S = (0.1, 0.5)
"""A wait looks again after 0.1 s, then less often, up to every 0.5 s: a thousand
long waits wake the loop a few thousand times a second, not ten thousand."""


async def visible_record(ctx: Context, key: ApiKey, runtime_id: str) -> RuntimeRecord:
    record = await ctx.runtimes.get(runtime_id)
    if record is None or not key.can_see(record.team_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such runtime")
    return record


@router.post("/runtimes", status_code=201, response_model=RuntimeOut, responses=ERRORS)
async def create_runtime(
    body: CreateRuntimeBody,
    ctx: Context,
    key: Key,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> RuntimeOut:
    """201 with the new runtime; a repeat of an Idempotency-Key answers the first
    result again with 200 and `Idempotent-Replayed: true` (replay_no_op).

    A team key names its runtimes `<team>:<name>` (or leaves runtime_id out for
    a generated `<team>:rt-...`): no team can even try an id of another team's,
    so a taken id never tells it that another team's runtime exists."""
    if body.team_id is not None and not is_valid_team_id(body.team_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"team_id must be {TEAM_ID_RULE}")
    if not key.admin:
        check_team_create(key, body)
    result = await ctx.lifecycle.create.handle(
        CreateRequest(
            spec=body.spec,
            op_source=OpSource.REST,
            runtime_id=body.runtime_id,
            team_id=body.team_id or key.team_id,
            driver=body.driver,
            start=body.start,
            actor=key.key_id,
            job_id=idempotency_key,
            restricted=not key.admin,
            settings=body.settings(),
        )
    )
    if not result.ok or result.record is None:
        code = result.error_code or ErrorCode.INTERNAL
        raise ApiError(code, result.error_message, operation_id=result.operation_id)
    if result.error_code is ErrorCode.REPLAY_NO_OP:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return RuntimeOut.of(result.record)


def in_namespace(key: ApiKey, runtime_id: str) -> bool:
    """Whether `runtime_id` is `<the key's team>:<name>`."""
    prefix = f"{key.team_id or ''}:"
    return runtime_id.startswith(prefix) and runtime_id != prefix


def outside_namespace(key: ApiKey) -> ApiError:
    return ApiError(
        ErrorCode.INVALID_REQUEST,
        f"a team key names runtimes {key.team_id or ''}:<name> (or leaves runtime_id out)",
    )


def check_team_create(key: ApiKey, body: CreateRuntimeBody) -> None:
    """A team key creates in its own team, under its own namespace."""
    if body.team_id not in (None, key.team_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, "a team key creates runtimes in its own team")
    if body.runtime_id is not None and not in_namespace(key, body.runtime_id):
        raise outside_namespace(key)


SINGLE_LIST_PARAMS = ("status", "team_id", "host_id", "cursor", "limit")


@router.get("/runtimes", response_model=RuntimeListOut)
async def list_runtimes(
    request: Request,
    ctx: Context,
    key: Key,
    status: Status | None = None,
    team_id: str | None = None,
    host_id: Annotated[
        str | None, Query(description="only the runtimes on this host (a team key too)")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    label: Annotated[
        list[str] | None,
        Query(description="label selector terms: k=v, k!=v, k, !k; several AND together"),
    ] = None,
) -> RuntimeListOut:
    """Runtimes by runtime_id, paged with `cursor` (the previous page's
    next_cursor). A team key sees its own team's only; each single-valued
    filter may be given once."""
    given_twice = [p for p in SINGLE_LIST_PARAMS if len(request.query_params.getlist(p)) > 1]
    if given_twice:  # not the last one silently: a caller who sent two meant something
        raise ApiError(ErrorCode.INVALID_REQUEST, f"give {given_twice[0]} once (label may repeat)")
    if host_id is not None and not is_valid_host_id(host_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"host_id must be {HOST_ID_RULE}")
    scope = team_scope(key)
    if scope is not None and team_id not in (None, scope):
        return RuntimeListOut(runtimes=[], next_cursor=None)
    if label:
        return await list_selected(ctx, label, status, scope or team_id, host_id, cursor, limit)
    page = await ctx.runtimes.list(
        status=status, team_id=scope or team_id, host_id=host_id, after=cursor, limit=limit
    )
    return RuntimeListOut(
        runtimes=[RuntimeOut.of(r) for r in page.records], next_cursor=page.next_cursor
    )


async def list_selected(
    ctx: Context,
    terms: list[str],
    status: Status | None,
    team_id: str | None,
    host_id: str | None,
    cursor: str | None,
    limit: int,
) -> RuntimeListOut:
    """A list narrowed by a label selector (domain/runtime_settings.py)."""
    try:
        selector = parse_selector(terms)
    except SettingsRefused as exc:
        raise ApiError(exc.code, exc.message) from exc
    if ctx.runtime_settings is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "label selection is not available here")
    page = await ctx.runtime_settings.store.list(
        selector, status=status, team_id=team_id, host_id=host_id, after=cursor, limit=limit
    )
    return RuntimeListOut(
        runtimes=[RuntimeOut.of(r) for r in page.records], next_cursor=page.next_cursor
    )


@router.get("/runtimes/{runtime_id}", response_model=RuntimeOut, responses=ERRORS)
async def get_runtime(runtime_id: str, ctx: Context, key: Key) -> RuntimeOut:
    """One runtime's record. Another team's runtime answers 404, as a missing id does."""
    return RuntimeOut.of(await visible_record(ctx, key, runtime_id))


@router.get(
    "/runtimes/{runtime_id}/wait",
    response_model=RuntimeOut,
    responses={
        **ERRORS,
        408: {"description": "the status was not reached in time"},
        429: {"description": "this key already holds max_waits_per_key waits here"},
    },
)
async def wait_for_status(
    runtime_id: str,
    ctx: Context,
    key: Key,
    request: Request,
    status: Annotated[str, Query(description="one status, or several separated by commas")],
    timeout: Annotated[float, Query(gt=0)] = 30.0,  # noqa: ASYNC109 - the API parameter
) -> RuntimeOut | Response:
    """Wait until the runtime is in one of `status` and answer its record; 408
    `timeout` when `timeout` seconds (capped by the server's wait bound) pass first."""
    wanted = _parse_statuses(status)
    start = time.monotonic()
    deadline = start + min(timeout, ctx.wait_max_timeout_s)
    since: float | None = start
    slots: KeySlots = request.app.state.wait_slots
    reads: SharedReads[RuntimeRecord | None] = request.app.state.wait_reads
    sleep_s = _WAIT_SLEEP_S[0]
    with slots.hold(key):
        while True:
            record = await reads.read(runtime_id, lambda: ctx.runtimes.get(runtime_id), since=since)
            if record is None or not key.can_see(record.team_id):
                raise ApiError(ErrorCode.NOT_FOUND, "no such runtime")
            if record.status in wanted:
                return RuntimeOut.of(record)
            if time.monotonic() >= deadline:
                raise ApiError(
                    "timeout", f"runtime is still {record.status} after {timeout:g}s", status=408
                )
            await asyncio.sleep(min(sleep_s, max(0.0, deadline - time.monotonic())))
            if await request.is_disconnected():
                # Nobody is left to answer; a wait kept going would also hold
                # the server's graceful shutdown until its deadline. 499 as
                # nginx logs a client that closed its request.
                return Response(status_code=499)
            since = None
            sleep_s = min(sleep_s * 1.25, _WAIT_SLEEP_S[1])


def _parse_statuses(raw: str) -> set[Status]:
    try:
        return {Status(part.strip()) for part in raw.split(",") if part.strip()}
    except ValueError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"unknown status in {raw!r}") from exc
