"""A runtime's output (`GET /v1/runtimes/{id}/logs`) and resource samples
(`GET /v1/runtimes/{id}/metrics`), team-scoped like every runtime route: a
runtime another team's key cannot see is `not_found`.

`follow=true` answers `application/x-ndjson`: one JSON object a line, each a
log line (`{"ts", "stream", "text"}`), a blank line as a keepalive while the
runtime is quiet, and last `{"end": {"reason", "cursor"}}` once the runtime
stopped and everything it wrote was sent (docs/operating.d/logs.md)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from runplane.api.auth import Context, Key, context_of
from runplane.api.concurrency import KeySlots
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS
from runplane.api.routes.runtimes import visible_record
from runplane.api.schemas.runtime_output import LogLineOut, LogsOut, MetricsOut
from runplane.domain.errors import ErrorCode
from runplane.domain.runtime_output import (
    MAX_TAIL,
    MAX_WINDOW_S,
    BadOutputQuery,
    LogLine,
    LogQuery,
)
from runplane.services.runtime_output import FollowEnd, OutputUnavailable, RuntimeOutput

router = APIRouter(prefix="/v1", tags=["runtimes"])

DEFAULT_TAIL = 100
_CURSOR = re.compile(r"^[0-9:]{1,64}$")
NDJSON = "application/x-ndjson"


def _output(request: Request) -> RuntimeOutput:
    output = context_of(request).runtime_output
    if output is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "runtime output is not configured")
    return output


def parse_tail(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_TAIL
    if raw == "all":
        return None
    if not raw.isdigit() or int(raw) > MAX_TAIL:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"tail must be 0 to {MAX_TAIL}, or all")
    return int(raw)


def parse_since(raw: str | None) -> float | None:
    """Epoch seconds, or an RFC 3339 time with its zone."""
    if raw is None:
        return None
    try:
        return float(raw) if re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw) else _rfc3339(raw)
    except ValueError:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "since must be epoch seconds or an RFC 3339 time with a zone (2026-01-02T03:04:05Z)",
        ) from None


def _rfc3339(raw: str) -> float:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment.timestamp()


def log_query(tail: str | None, since: str | None, cursor: str | None) -> LogQuery:
    if cursor is not None:
        if not _CURSOR.match(cursor):
            raise ApiError(ErrorCode.INVALID_REQUEST, "cursor must be one a read returned")
        return LogQuery(cursor=cursor)
    since_s = parse_since(since)
    # Since alone: every kept line from then on (bounded per read, as always).
    return LogQuery(tail=parse_tail(tail) if since_s is None or tail else None, since=since_s)


@router.get(
    "/runtimes/{runtime_id}/logs",
    response_model=LogsOut,
    responses={
        **ERRORS,
        200: {"content": {NDJSON: {}}, "description": "with follow=true: NDJSON lines"},
        429: {"description": "this key already holds max_streams_per_key streams here"},
    },
    operation_id="get_runtime_logs",
)
async def runtime_logs(
    runtime_id: str,
    ctx: Context,
    key: Key,
    request: Request,
    tail: Annotated[
        str | None, Query(description=f"the last N lines (0-{MAX_TAIL}, default 100) or all")
    ] = None,
    since: Annotated[
        str | None, Query(description="lines from this time: epoch seconds or RFC 3339")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=64, description="go on after an earlier read")
    ] = None,
    follow: bool = False,
) -> LogsOut | StreamingResponse:
    """The runtime's output (stdout and stderr), as lines with a time and a
    `cursor` to go on from. With follow=true, NDJSON lines as they are written,
    until the client leaves or the runtime ends."""
    query = log_query(tail, since, cursor)
    output = _output(request)
    record = await visible_record(ctx, key, runtime_id)
    if follow:
        slots: KeySlots = request.app.state.stream_slots
        release = slots.take(key)
        events = output.follow(record, query)
        try:
            first = await anext(events)  # errors of the first read answer as errors
        except (BadOutputQuery, OutputUnavailable) as exc:
            release()
            raise _error(exc) from exc
        except BaseException:
            release()
            raise
        return StreamingResponse(_ndjson(first, events, release), media_type=NDJSON)
    try:
        chunk = await output.read(record, query)
    except (BadOutputQuery, OutputUnavailable) as exc:
        raise _error(exc) from exc
    return LogsOut(
        runtime_id=runtime_id,
        lines=[LogLineOut.of(line) for line in chunk.lines],
        cursor=chunk.cursor,
        running=chunk.running,
        more=chunk.more,
        dropped=chunk.dropped,
    )


async def _ndjson(
    first: list[LogLine] | FollowEnd,
    events: AsyncGenerator[list[LogLine] | FollowEnd, None],
    release: Callable[[], None],
) -> AsyncIterator[bytes]:
    try:
        item = first
        while True:
            if isinstance(item, FollowEnd):
                end = {"end": {"reason": item.reason, "cursor": item.cursor}}
                yield json.dumps(end).encode() + b"\n"
                return
            if not item:
                yield b"\n"  # keepalive: a client that went away is noticed here
            else:
                yield b"".join(
                    LogLineOut.of(line).model_dump_json().encode() + b"\n" for line in item
                )
            try:
                item = await anext(events)
            except (BadOutputQuery, OutputUnavailable) as exc:
                error = {"error": {"code": _error(exc).code, "message": str(exc)}}
                yield json.dumps(error).encode() + b"\n"
                return
    finally:
        await events.aclose()
        release()


def _error(exc: Exception) -> ApiError:
    if isinstance(exc, BadOutputQuery):
        return ApiError(ErrorCode.INVALID_REQUEST, str(exc))
    return ApiError(ErrorCode.SERVICE_UNAVAILABLE, str(exc))


@router.get(
    "/runtimes/{runtime_id}/metrics",
    response_model=MetricsOut,
    responses=ERRORS,
    operation_id="get_runtime_metrics",
)
async def runtime_metrics(
    runtime_id: str,
    ctx: Context,
    key: Key,
    request: Request,
    window: Annotated[
        float, Query(gt=0, le=MAX_WINDOW_S, description="seconds of recent samples")
    ] = 300.0,
) -> MetricsOut:
    """The runtime's recent CPU, memory and (where the driver can tell) disk
    samples, taken on its host. A first call starts sampling it (for
    RUNPLANE_METRICS_WATCH_S) and answers one sample taken at once."""
    output = _output(request)
    record = await visible_record(ctx, key, runtime_id)
    try:
        samples = await output.metrics(record, window)
    except (BadOutputQuery, OutputUnavailable) as exc:
        raise _error(exc) from exc
    return MetricsOut.of(runtime_id, samples)
