"""Snapshots (docs/seeds.md#snapshots): take one from a runtime, list, read and
delete them, and start a new runtime from one. Team-scoped like runtimes: a
team key sees its own team's snapshots only; another's id is simply not found."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from runplane.api.auth import Context, Key, team_scope
from runplane.api.errors import ApiError
from runplane.api.routes.operations import IdempotencyKey
from runplane.api.routes.runtimes import in_namespace, outside_namespace
from runplane.api.schemas.errors import ErrorBody
from runplane.api.schemas.runtimes import RuntimeOut
from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpSource
from runplane.domain.snapshots import Snapshot, SnapshotNotFound, is_valid_snapshot_id
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.snapshots import SnapshotRefused, Snapshots

router = APIRouter(prefix="/v1", tags=["snapshots"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 500, 503)
}


class SnapshotOut(BaseModel):
    snapshot_id: str
    team_id: str
    runtime_id: str
    """The runtime it was taken from."""
    driver: str
    host_id: str
    ref: str
    """The image (docker) or copy (process) it is kept as, on `host_id`."""
    spec: dict[str, Any]
    size_bytes: int | None
    created_at: datetime | None

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotOut:
        return cls(
            snapshot_id=snapshot.snapshot_id,
            team_id=snapshot.team_id,
            runtime_id=snapshot.runtime_id,
            driver=snapshot.driver,
            host_id=snapshot.host_id,
            ref=snapshot.ref,
            spec=snapshot.spec,
            size_bytes=snapshot.size_bytes,
            created_at=snapshot.created_at,
        )


class SnapshotListOut(BaseModel):
    snapshots: list[SnapshotOut]
    next_cursor: str | None


class FromSnapshotBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtime_id: str | None = Field(default=None, max_length=128)
    spec: dict[str, Any] = Field(default_factory=dict)
    """Fields over the snapshot's own spec (e.g. another `command` or `env`)."""
    start: StrictBool = True


def _snapshots(ctx: Context) -> Snapshots:
    if ctx.snapshots is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "snapshots are not configured")
    return ctx.snapshots


def _checked_id(snapshot_id: str) -> str:
    if not is_valid_snapshot_id(snapshot_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such snapshot")
    return snapshot_id


def _refused(exc: SnapshotRefused | SnapshotNotFound) -> ApiError:
    if isinstance(exc, SnapshotNotFound):
        return ApiError(ErrorCode.NOT_FOUND, "no such snapshot")
    return ApiError(exc.code, str(exc))


@router.post(
    "/runtimes/{runtime_id}/snapshot",
    response_model=SnapshotOut,
    status_code=201,
    responses=_ERRORS,
    operation_id="snapshot_runtime",
)
async def snapshot_runtime(runtime_id: str, ctx: Context, key: Key) -> SnapshotOut:
    """Take a snapshot of a running, paused or stopped runtime: docker commits
    its container to a local image, process copies its working directory."""
    try:
        snapshot = await _snapshots(ctx).take(
            runtime_id, team_scope=team_scope(key), actor=key.key_id
        )
    except (SnapshotRefused, SnapshotNotFound) as exc:
        raise _refused(exc) from None
    return SnapshotOut.of(snapshot)


@router.get(
    "/snapshots", response_model=SnapshotListOut, responses=_ERRORS, operation_id="list_snapshots"
)
async def list_snapshots(
    ctx: Context,
    key: Key,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SnapshotListOut:
    """The caller's team's snapshots (an admin key: every team's), by id."""
    found = await _snapshots(ctx).list(team_scope=team_scope(key), after=cursor, limit=limit)
    next_cursor = found[-1].snapshot_id if len(found) == limit else None
    return SnapshotListOut(snapshots=[SnapshotOut.of(s) for s in found], next_cursor=next_cursor)


@router.get(
    "/snapshots/{snapshot_id}",
    response_model=SnapshotOut,
    responses=_ERRORS,
    operation_id="get_snapshot",
)
async def get_snapshot(snapshot_id: str, ctx: Context, key: Key) -> SnapshotOut:
    """One snapshot: the runtime it was taken from, its driver, spec and host."""
    try:
        snapshot = await _snapshots(ctx).get(_checked_id(snapshot_id), team_scope=team_scope(key))
    except SnapshotNotFound as exc:
        raise _refused(exc) from None
    return SnapshotOut.of(snapshot)


@router.delete(
    "/snapshots/{snapshot_id}",
    response_model=SnapshotOut,
    responses=_ERRORS,
    operation_id="delete_snapshot",
)
async def delete_snapshot(snapshot_id: str, ctx: Context, key: Key) -> SnapshotOut:
    """Delete a snapshot and its image or copy; 409 while a container still uses its image."""
    try:
        snapshot = await _snapshots(ctx).delete(
            _checked_id(snapshot_id), team_scope=team_scope(key), actor=key.key_id
        )
    except (SnapshotRefused, SnapshotNotFound) as exc:
        raise _refused(exc) from None
    return SnapshotOut.of(snapshot)


@router.post(
    "/snapshots/{snapshot_id}/runtimes",
    response_model=RuntimeOut,
    status_code=201,
    responses=_ERRORS,
    operation_id="create_runtime_from_snapshot",
)
async def create_from_snapshot(
    snapshot_id: str,
    body: FromSnapshotBody,
    ctx: Context,
    key: Key,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> RuntimeOut:
    """A new runtime made from the snapshot, in the snapshot's team, on the
    host that holds it: the snapshot's spec with `spec`'s fields over it."""
    if not key.admin and body.runtime_id is not None and not in_namespace(key, body.runtime_id):
        raise outside_namespace(key)
    try:
        snapshot, spec = await _snapshots(ctx).spec_from(
            _checked_id(snapshot_id), team_scope=team_scope(key), overrides=body.spec
        )
    except SnapshotNotFound as exc:
        raise _refused(exc) from None
    result = await ctx.lifecycle.create.handle(
        CreateRequest(
            spec=spec,
            op_source=OpSource.REST,
            runtime_id=body.runtime_id,
            team_id=snapshot.team_id,
            driver=snapshot.driver,
            start=body.start,
            actor=key.key_id,
            job_id=idempotency_key,
            restricted=not key.admin,
        )
    )
    if not result.ok or result.record is None:
        code = result.error_code or ErrorCode.INTERNAL
        raise ApiError(code, result.error_message, operation_id=result.operation_id)
    if result.error_code is ErrorCode.REPLAY_NO_OP:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return RuntimeOut.of(result.record)
