"""Job submission and the dead letters, over REST (the CLI's `jobs` and `dlq`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from runplane.api.auth import AdminKey, Context, Key
from runplane.api.context import ApiContext
from runplane.api.errors import ApiError
from runplane.api.routes.operations import IDEMPOTENCY_KEY_RULE
from runplane.api.routes.runtimes import in_namespace, outside_namespace
from runplane.domain.api_keys import ApiKey
from runplane.domain.dead_letters import (
    ID_RULE,
    DeadLetterNotFound,
    DeadLetterUnreplayable,
    is_entry_id,
)
from runplane.domain.documents import is_valid_idempotency_key
from runplane.domain.errors import ErrorCode
from runplane.domain.jobs import submission_problem
from runplane.domain.operations import OpKind
from runplane.ports.streams import DeadLetterQueue, JobQueue

router = APIRouter(prefix="/v1", tags=["jobs"])
_REPLAY_ERRORS: dict[int | str, dict[str, object]] = {
    409: {"description": "`invalid_state`: the entry cannot be replayed"}
}


class SubmitJobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: OpKind
    runtime_id: str = Field(max_length=128)
    reason: str | None = Field(default=None, max_length=64)
    job_id: str | None = Field(default=None, max_length=256)
    team_id: str | None = Field(default=None, max_length=128)
    spec: dict[str, Any] | None = None


class SubmittedJobOut(BaseModel):
    stream: str
    entry_id: str
    job_id: str


class JobResultOut(BaseModel):
    """A job's result as `runtime:job_results` carries it (DESIGN §4)."""

    job_id: str
    runtime_id: str
    op: str
    outcome: str
    error_code: str
    error_message: str
    status: str
    finished_at_ms: int
    entry_id: str
    """The result's entry id on `runtime:job_results`."""


class DeadLetterOut(BaseModel):
    id: str
    stream: str
    entry_id: str
    fields: dict[str, str]
    error: str
    deliveries: int


def _jobs(ctx: Context) -> JobQueue:
    if ctx.jobs is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "job streams are not configured")
    return ctx.jobs


def _dead_letters(ctx: Context) -> DeadLetterQueue:
    if ctx.dead_letters is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "job streams are not configured")
    return ctx.dead_letters


@router.post("/jobs", status_code=202, response_model=SubmittedJobOut)
async def submit_job(body: SubmitJobBody, ctx: Context, key: Key) -> SubmittedJobOut:
    """Put a job on the operation's stream; its result arrives on `runtime:job_results`."""
    if not key.admin and body.team_id not in (None, key.team_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, "a team key submits jobs for its own team")
    if not key.admin and not in_namespace(key, body.runtime_id):
        # A start job with a spec creates a runtime it does not find: outside
        # the team's namespace that would tell a free id from another team's.
        record = await ctx.runtimes.get(body.runtime_id)
        if record is None or not key.can_see(record.team_id):
            raise outside_namespace(key)
    if body.job_id is not None and not is_valid_idempotency_key(body.job_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"job_id must be {IDEMPOTENCY_KEY_RULE}")
    # Refused now rather than accepted and answered with a failure later.
    problem = submission_problem(body.op, body.reason or "", body.spec is not None)
    if problem is not None:
        raise ApiError(ErrorCode.INVALID_REQUEST, problem)
    fields = {"runtime_id": body.runtime_id}
    optional = {
        "reason": body.reason,
        "job_id": body.job_id,
        "team_id": body.team_id or key.team_id,
        "spec": json.dumps(body.spec) if body.spec is not None else None,
        # A team key's job is held to its team's policy, as its REST calls are.
        "actor": key.key_id,
        "restricted": None if key.admin else "true",
    }
    fields.update({name: value for name, value in optional.items() if value})
    stream, entry_id = await _jobs(ctx).submit(str(body.op), fields)
    return SubmittedJobOut(
        stream=stream, entry_id=entry_id, job_id=body.job_id or f"{stream}/{entry_id}"
    )


@router.get("/jobs/{job_id:path}", response_model=JobResultOut)
async def get_job_result(
    job_id: Annotated[
        str, Path(description=f"the job's id: {IDEMPOTENCY_KEY_RULE}", max_length=256)
    ],
    ctx: Context,
    key: Key,
    after: str | None = None,
) -> JobResultOut:
    """A job's result, once its consumer has answered (`not_found` until then).
    `after` (an entry id of `runtime:job_results`) reads only newer results.
    A team key reads only the results of its own team's runtimes."""
    if not is_valid_idempotency_key(job_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"job_id must be {IDEMPOTENCY_KEY_RULE}")
    if after is not None:
        _check_id(after, "after")
    for entry_id, fields in await _jobs(ctx).results(job_id, after=after):
        runtime_id = fields.get("runtime_id") or fields.get("game_id", "")
        if await _may_read(ctx, key, runtime_id):
            return JobResultOut(
                job_id=job_id,
                runtime_id=runtime_id,
                op=fields.get("op", ""),
                outcome=fields.get("outcome", ""),
                error_code=fields.get("error_code", ""),
                error_message=fields.get("error_message", ""),
                status=fields.get("status", ""),
                finished_at_ms=int(fields.get("finished_at_ms") or 0),
                entry_id=entry_id,
            )
    # Another team's result is as absent as none: a job id tells nothing.
    raise ApiError(ErrorCode.NOT_FOUND, "no result for this job (yet)")


async def _may_read(ctx: ApiContext, key: ApiKey, runtime_id: str) -> bool:
    """The rule submit_job applies: a team's namespace, or a runtime it sees."""
    if key.admin or in_namespace(key, runtime_id):
        return True
    record = await ctx.runtimes.get(runtime_id) if runtime_id else None
    return record is not None and key.can_see(record.team_id)


@router.get("/dead-letters", response_model=list[DeadLetterOut])
async def list_dead_letters(
    ctx: Context,
    _: AdminKey,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    """Job entries that failed too often, oldest first, paged with `after`. Admin only."""
    if after is not None:
        _check_id(after, "after")
    letters = await _dead_letters(ctx).list(after=after, count=limit)
    return [
        DeadLetterOut(
            id=letter.id,
            stream=letter.stream,
            entry_id=letter.entry_id,
            fields=letter.fields,
            error=letter.error,
            deliveries=letter.deliveries,
        )
        for letter in letters
    ]


@router.post("/dead-letters/{dead_letter_id}/replay", responses=_REPLAY_ERRORS)
async def replay_dead_letter(dead_letter_id: str, ctx: Context, _: AdminKey) -> dict[str, str]:
    """Put the dead letter's entry back on its stream (answers the new entry
    id); 409 `invalid_state` when the entry cannot be replayed. Admin only."""
    _check_id(dead_letter_id, "dead_letter_id")
    try:
        entry_id = await _dead_letters(ctx).replay(dead_letter_id)
    except DeadLetterNotFound as exc:
        raise ApiError(ErrorCode.NOT_FOUND, str(exc)) from exc
    except DeadLetterUnreplayable as exc:
        raise ApiError(ErrorCode.INVALID_STATE, str(exc)) from exc
    return {"entry_id": entry_id}


@router.delete("/dead-letters/{dead_letter_id}")
async def drop_dead_letter(dead_letter_id: str, ctx: Context, _: AdminKey) -> dict[str, bool]:
    """Delete the dead letter for good. Admin only."""
    _check_id(dead_letter_id, "dead_letter_id")
    if not await _dead_letters(ctx).drop(dead_letter_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such dead letter")
    return {"dropped": True}


def _check_id(value: str, name: str) -> None:
    """Checked before Redis sees it: Redis answers a malformed id with an error."""
    if not is_entry_id(value):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"{name}: {ID_RULE}")
