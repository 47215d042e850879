"""Lifecycle events over REST: pages of the durable stream (`GET /v1/events`) and
the live SSE stream (`GET /v1/events/stream`), both scoped to a team key's team.

The SSE stream sends each event as `id: <stream entry id>`, `event: <type>`,
`data: <envelope JSON>`, with a keepalive comment every PING_S. It resumes after
`Last-Event-ID` (header, or `?last_event_id=`) with no gap and no duplicate: the
replay is read from the durable stream, then the live events come from the
instance's one reader (services/event_fanout.py), each event encoded once for
every client it goes to. A client that falls too far behind the live events is
cut: it gets one `event: runplane.lagging` (its `id:` the last event it was sent)
and the stream closes; it reconnects with Last-Event-ID and loses nothing. If
the stream was trimmed past its position, it gets one `event: resync` and the
stream closes; one that stops reading is disconnected after SEND_TIMEOUT_S.
Transient events (`runtime.state.changed`) are not in the durable stream, so
they are not on this stream either: they cannot be resumed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from prometheus_client import Counter, Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from runplane.api.auth import Key, context_of, team_scope
from runplane.api.concurrency import KeySlots
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS
from runplane.api.schemas.events import EventOut, EventPageOut
from runplane.domain.errors import ErrorCode
from runplane.domain.event_reading import EventFilter, EventsTrimmed, StoredEvent, is_stream_id
from runplane.domain.lifecycle_events import DURABLE_TYPES, TRANSIENT_TYPES
from runplane.services.event_fanout import EventFanout, FollowerLagging

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["events"])

PING_S = 15.0
SEND_TIMEOUT_S = 60.0
"""A client that has not taken one write in this long is disconnected."""
RESYNC = "resync"
LAGGING = "runplane.lagging"
ENCODED_FRAMES = 4_096
"""Recent events whose encoded frame is kept, so each is encoded once, not per client."""

SSE_CLIENTS = Gauge("runplane_sse_clients", "Open SSE event streams (GET /v1/events/stream).")
SSE_CUT = Counter(
    "runplane_sse_lagging_total", "SSE streams cut because the client fell behind the live events."
)


async def event_reader(request: Request) -> EventFanout:
    reader = context_of(request).event_reader
    if reader is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "the event stream is not configured")
    return reader


Reader = Annotated[EventFanout, Depends(event_reader)]


def event_types(values: list[str] | None) -> frozenset[str]:
    """Types from repeated and/or comma-separated values; only durable ones exist."""
    names = frozenset(
        name.strip() for value in values or () for name in value.split(",") if name.strip()
    )
    if transient := names & TRANSIENT_TYPES:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            f"{', '.join(sorted(transient))} is transient: the event stream does not keep it",
        )
    if unknown := names - DURABLE_TYPES:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            f"unknown event type {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(DURABLE_TYPES))}",
        )
    return names


def stream_position(value: str | None, name: str) -> str | None:
    if value is not None and not is_stream_id(value):
        raise ApiError(
            ErrorCode.INVALID_REQUEST, f"{name} must be a stream entry id like 1700000000000-0"
        )
    return value


def event_filter(key: Key, types: frozenset[str], runtime_id: str | None) -> EventFilter:
    return EventFilter(types=types, runtime_id=runtime_id, team_id=team_scope(key))


@router.get("/events", response_model=EventPageOut, responses=ERRORS)
async def list_events(
    key: Key,
    reader: Reader,
    after: Annotated[str | None, Query(description="the previous page's next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[
        list[str] | None, Query(description="repeatable, or comma-separated: any of these")
    ] = None,
    runtime_id: Annotated[str | None, Query(max_length=128)] = None,
    order: Annotated[
        Literal["asc", "desc"],
        Query(
            description="`asc`: oldest first; `desc`: newest first (`limit=20&order=desc` "
            "is the 20 newest), each page's next_cursor going on to older events"
        ),
    ] = "asc",
) -> EventPageOut:
    """Durable events, oldest first (or newest first with `order=desc`), paged
    by stream position."""
    where = event_filter(key, event_types(type), runtime_id)
    position = stream_position(after, "after")
    if order == "desc":
        page = await reader.latest(before=position, limit=limit, where=where)
    else:
        page = await reader.page(after=position, limit=limit, where=where)
    return EventPageOut(
        events=[EventOut(id=e.entry_id, event=e.envelope) for e in page.events],
        next_cursor=page.next_cursor,
    )


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`id:` stream entry id, `event:` type, `data:` CloudEvents envelope",
        "content": {"text/event-stream": {}},
    },
    **ERRORS,
    429: {"description": "this key already follows max_streams_per_key streams here"},
}


@router.get("/events/stream", response_class=EventSourceResponse, responses=STREAM_RESPONSES)
async def stream_events(
    key: Key,
    reader: Reader,
    request: Request,
    types: Annotated[
        list[str] | None, Query(description="repeatable, or comma-separated: any of these")
    ] = None,
    runtime_id: Annotated[str | None, Query(max_length=128)] = None,
    last_event_id: Annotated[
        str | None, Query(description="resume after this entry id (as Last-Event-ID)")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Server-Sent Events: every new event, or every event after Last-Event-ID."""
    where = event_filter(key, event_types(types), runtime_id)
    resume = stream_position(last_event_id_header or last_event_id, "Last-Event-ID")
    position = resume if resume is not None else await reader.last_id()
    slots: KeySlots = request.app.state.stream_slots
    release = slots.take(key)  # held until the response ends, however it ends
    return EventStream(
        event_frames(reader, position, where),
        ping=PING_S,
        send_timeout=SEND_TIMEOUT_S,
        on_close=release,
    )


class EventStream(EventSourceResponse):
    """An SSE response that disconnects a stuck client quietly (one log line)
    and gives back its follower slot when it ends."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            logger.warning("sse client too slow; disconnected", extra={"path": scope.get("path")})
        finally:
            self._on_close()


def frame(event: StoredEvent) -> ServerSentEvent:
    data = json.dumps(event.envelope, separators=(",", ":"), sort_keys=True)
    return ServerSentEvent(data=data, id=event.entry_id, event=event.type)


class EncodedFrames:
    """The encoded frame of each recent event, by identity: the fan-out hands the
    same StoredEvent to every client, so a thousand clients cost one encoding.
    An entry keeps its event alive (`_held`), so no other object can take its id
    while the entry is there. A batch is looked up with no Python call per frame
    (a thousand clients times every event: that call was a tenth of serve's CPU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._frames: dict[int, bytes] = {}
        self._held: dict[int, StoredEvent] = {}

    def batch(self, events: list[StoredEvent]) -> bytes:
        frames = list(map(self._frames.get, map(id, events)))
        if None in frames:
            frames = [
                f if f is not None else self._encode(e) for f, e in zip(frames, events, strict=True)
            ]
        return b"".join(frames)  # type: ignore[arg-type]  # no None left

    def _encode(self, event: StoredEvent) -> bytes:
        encoded = frame(event).encode()
        if len(self._frames) >= self._size:
            oldest = next(iter(self._frames))
            del self._frames[oldest], self._held[oldest]
        self._frames[id(event)] = encoded
        self._held[id(event)] = event
        return encoded


encoded_frames = EncodedFrames(ENCODED_FRAMES)


async def event_frames(
    reader: EventFanout, position: str, where: EventFilter
) -> AsyncIterator[bytes | ServerSentEvent]:
    """The frames of one SSE client: events after `position`, each batch that
    arrived together in one write; then a resync frame if the stream was trimmed
    past what it had received, or a lagging frame if it fell behind."""
    SSE_CLIENTS.inc()
    delivered = position
    batches = reader.follow_batches(after=position, where=where)
    try:
        async for batch in batches:
            yield encoded_frames.batch(batch)
            delivered = batch[-1].entry_id
    except EventsTrimmed:
        logger.warning("sse client missed trimmed events; resync", extra={"entry_id": delivered})
        yield await resync_frame(reader, delivered)
    except FollowerLagging as lagging:
        SSE_CUT.inc()
        logger.warning("sse client fell behind; cut", extra={"entry_id": lagging.after})
        yield lagging_frame(lagging.after)
    except Exception:
        # The stream ends; the client reconnects with Last-Event-ID and misses nothing.
        logger.warning("sse event stream failed", extra={"entry_id": delivered}, exc_info=True)
    finally:
        SSE_CLIENTS.dec()
        await batches.aclose()


def lagging_frame(delivered: str) -> ServerSentEvent:
    """Tells the client it was cut: nothing is lost, it resumes after `delivered`
    (also its `id:`, so an EventSource reconnecting on its own sends it)."""
    data = json.dumps(
        {
            "last_event_id": delivered,
            "reason": "this client fell too far behind the live events; "
            "reconnect with Last-Event-ID to resume",
        },
        separators=(",", ":"),
    )
    return ServerSentEvent(data=data, id=delivered, event=LAGGING)


async def resync_frame(reader: EventFanout, delivered: str) -> ServerSentEvent:
    """Tells the client events after `delivered` are gone: reload state, then
    continue from `resume_id` (its `id:`, so an EventSource reconnecting on its own
    continues from there rather than asking for the lost events again)."""
    try:
        resume_id: str | None = await reader.last_id()
    except Exception:
        logger.warning("sse resync without a resume id", extra={"entry_id": delivered})
        resume_id = None
    data = json.dumps(
        {
            "last_event_id": delivered,
            "resume_id": resume_id,
            "reason": "events after last_event_id are no longer retained; reload state",
        },
        separators=(",", ":"),
    )
    return ServerSentEvent(data=data, id=resume_id, event=RESYNC)
