"""The client's exceptions: one class per stable error code of the API
(`{"error": {"code", "message"}}`, DESIGN §6), all under RunplaneError, so a
caller branches on the class or on `.code` and never parses a message."""

from __future__ import annotations

from typing import Any

import httpx


class RunplaneError(Exception):
    """Any failure the client reports. `code` is the server's stable code (or
    the client's own: `connection_failed`, `resync`, `invalid_signature`);
    `status` the HTTP status, None when no answer came."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        operation_id: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.operation_id = operation_id
        """The operation-log entry a failed operation wrote (GET /v1/operations/{id})."""
        self.request_id = request_id
        """The server's X-Request-ID: its log lines about this call carry it."""
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidRequest(RunplaneError):
    code = "invalid_request"


class Unauthorized(RunplaneError):
    code = "unauthorized"


class Forbidden(RunplaneError):
    code = "forbidden"


class QuotaExceeded(Forbidden):
    """The team's runtime quota is full (403, like forbidden)."""

    code = "quota_exceeded"


class NotFound(RunplaneError):
    code = "not_found"


class MethodNotAllowed(RunplaneError):
    code = "method_not_allowed"


class Conflict(RunplaneError):
    """Someone else is operating on the runtime (its lease is held), or the id is taken."""

    code = "conflict"


class InvalidState(Conflict):
    """The operation does not apply to the runtime's status (409, like conflict)."""

    code = "invalid_state"


class PayloadTooLarge(RunplaneError):
    code = "payload_too_large"


class RateLimited(RunplaneError):
    """Too many calls, waits or event streams for this key; `retry_after_s` says
    when to try again."""

    code = "rate_limited"


class InternalError(RunplaneError):
    code = "internal"


class ServiceUnavailable(RunplaneError):
    """Redis, the database or a driver is unreachable: try again shortly."""

    code = "service_unavailable"


class WaitTimeout(RunplaneError, TimeoutError):
    """wait_for (or GET /wait, 408) did not see the status in time."""

    code = "timeout"


class ConnectionFailed(RunplaneError):
    """No answer: runplane could not be reached, or the connection broke."""

    code = "connection_failed"


class EventsResync(RunplaneError):
    """The event stream no longer holds the events after the position asked for:
    reload the state you derive from events, then follow again from `resume_id`."""

    code = "resync"

    def __init__(self, message: str, *, last_event_id: str, resume_id: str | None) -> None:
        super().__init__(message)
        self.last_event_id = last_event_id
        self.resume_id = resume_id


class WebhookVerificationFailed(RunplaneError):
    """A webhook's signature, timestamp or headers do not check out: drop it."""

    code = "invalid_signature"


ERRORS_BY_CODE: dict[str, type[RunplaneError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        QuotaExceeded,
        NotFound,
        MethodNotAllowed,
        Conflict,
        InvalidState,
        PayloadTooLarge,
        RateLimited,
        InternalError,
        ServiceUnavailable,
        WaitTimeout,
    )
}
"""Every code the server answers with (api/errors.py, api/limits.py, domain/errors.py)."""

_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal",
    503: "service_unavailable",
}
"""For an answer without runplane's error body (a proxy's page, say)."""


def error_from(response: httpx.Response) -> RunplaneError:
    """The exception for an error answer; the response's body must have been read."""
    detail: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = body["error"]
    status = response.status_code
    code = str(detail.get("code") or _CODE_BY_STATUS.get(status, f"http_{status}"))
    message = str(detail.get("message") or response.text[:500] or response.reason_phrase)
    cls = ERRORS_BY_CODE.get(code) or ERRORS_BY_CODE.get(_CODE_BY_STATUS.get(status, ""))
    return (cls or RunplaneError)(
        message,
        code=code,
        status=status,
        operation_id=detail.get("operation_id"),
        request_id=response.headers.get("x-request-id"),
        retry_after_s=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
