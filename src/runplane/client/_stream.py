"""Following `GET /v1/events/stream` (api/routes/events.py), shared by both
clients: what a frame means, where to resume, when to give up.

The server resumes after `Last-Event-ID` with no gap and no duplicate, so the
client keeps the id of the last event it handed out and sends it on every
reconnect: after a dropped connection, a server restart, or the server's
`runplane.lagging` frame (sent to a client that fell behind, just before it
closes the stream). A `resync` frame means the events after that id were
trimmed away: that is raised (EventsResync), never skipped silently."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from runplane.client import _calls
from runplane.client.errors import (
    ConnectionFailed,
    EventsResync,
    RunplaneError,
    ServiceUnavailable,
    error_from,
)
from runplane.client.models import Event

PATH = "/v1/events/stream"
LAGGING = "runplane.lagging"
RESYNC = "resync"
READ_TIMEOUT_S = 45.0
"""The server sends a keepalive every 15 s: three missed ones is a dead connection."""
RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)
DEFAULT_RECONNECT_FOR_S = 60.0

RECONNECTED_ERRORS = (httpx.TransportError, ServiceUnavailable)
"""Failures a follower reconnects after: no answer, a broken connection, a 503."""


class Cut(Exception):
    """The server cut the stream (lagging): reconnect at once from the last id."""


def stream_timeout(connect_s: float) -> httpx.Timeout:
    return httpx.Timeout(connect_s, read=READ_TIMEOUT_S)


@dataclass
class Follower:
    """One follow of the stream across reconnects."""

    types: Iterable[str] | None
    runtime_id: str | None
    last_event_id: str | None
    reconnect_for_s: float | None = DEFAULT_RECONNECT_FOR_S
    failing_since: float | None = None
    failures: int = 0

    def __post_init__(self) -> None:
        self.types = [str(t) for t in self.types] if self.types is not None else None

    def request(self) -> dict[str, Any]:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        return {"params": _calls.stream_params(self.types, self.runtime_id), "headers": headers}

    def opened(self, response: httpx.Response) -> None:
        """Raises the error of a refused stream; a 503 is worth reconnecting after."""
        if response.status_code != 200:
            raise error_from(response)
        self.failing_since, self.failures = None, 0

    def event(self, sse: ServerSentEvent) -> Event | None:
        """The event a frame carries (None for one that carries none), or Cut /
        EventsResync for the server's lagging and resync frames."""
        if sse.event == LAGGING:
            self.last_event_id = _field(sse, "last_event_id") or sse.id or self.last_event_id
            raise Cut
        if sse.event == RESYNC:
            raise EventsResync(
                "events after the last one received are no longer retained: reload state, "
                "then follow again from resume_id",
                last_event_id=_field(sse, "last_event_id") or self.last_event_id or "",
                resume_id=_field(sse, "resume_id"),
            )
        if not sse.data:
            return None
        event = Event.model_validate({**json.loads(sse.data), "stream_id": sse.id or None})
        if sse.id:
            self.last_event_id = sse.id
        return event

    def failed(self, error: Exception) -> float:
        """The delay before the next connection; raises once the stream has
        failed for longer than reconnect_for_s."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if self.reconnect_for_s is not None and now - self.failing_since >= self.reconnect_for_s:
            if isinstance(error, RunplaneError):
                raise error
            raise ConnectionFailed(
                f"the event stream failed for {self.reconnect_for_s:g}s: {error}"
            )
        self.failures += 1
        return RECONNECT_DELAYS_S[min(self.failures - 1, len(RECONNECT_DELAYS_S) - 1)]


def _field(sse: ServerSentEvent, name: str) -> str | None:
    try:
        value = json.loads(sse.data).get(name)
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None
