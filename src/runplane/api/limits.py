"""Limits on what one request may make runplane hold: the body's size and the
time it takes to arrive, JSON that is too deep or not valid Unicode, and a
NUL character anywhere in the path, the query or the JSON (no field accepts
one, and PostgreSQL cannot store or even compare text holding one).

All of it is checked here, outside routing and authentication, so a client
without a key cannot make runplane buffer more than `max_request_bytes` nor
hold a request open longer than `request_body_timeout_s` while its body
trickles in. The body is read whole (it is small) and handed on to the app."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.errors import ApiError, error_response
from runplane.domain.documents import NUL_PROBLEM, InvalidDocument, loads

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
BODY_SCOPE_KEY = "runplane.body"
"""Where the body read here is left in the ASGI scope for api/fast_ops.py (the
app behind still receives it as messages)."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """What one request and one key may hold (Settings of the same names)."""

    max_request_bytes: int = MIB
    request_body_timeout_s: float = 10.0
    rate_limit_per_s: float = 50.0
    """Per team key, shared by every instance; 0 disables. Admin keys are exempt."""
    rate_limit_burst: int = 200
    max_waits_per_key: int = 16
    """Concurrent GET /v1/runtimes/{id}/wait calls per key, per instance."""
    max_streams_per_key: int = 16
    """Concurrent GET /v1/events/stream followers per key, per instance."""


class RateLimited(ApiError):
    """429 rate_limited, with the whole seconds to wait in Retry-After."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__("rate_limited", message, status=429)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class Outage:
    """The rate limiter's store is unreachable: requests skip it for SKIP_S (a
    blackholed Redis would otherwise add its connect timeouts and retries to
    every request), and the warning is logged at most once every LOG_EVERY_S."""

    SKIP_S = 5.0
    LOG_EVERY_S = 30.0

    def __init__(self) -> None:
        self.until = 0.0
        self.logged = float("-inf")

    def active(self) -> bool:
        return time.monotonic() < self.until

    def begin(self, error: Exception) -> None:
        now = time.monotonic()
        self.until = now + self.SKIP_S
        if now - self.logged >= self.LOG_EVERY_S:
            self.logged = now
            logger.warning(
                "rate limits not enforced: Redis unreachable", extra={"error": str(error)}
            )


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, limits: ApiLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            _check_target(scope)
            self._check_length(headers)
            body = await self._read_body(receive)
            if body and _parsed_as_json(scope, headers):
                _check_json(body)
        except _Refused as refused:
            await _answer(refused, scope, receive, send)
            return
        scope[BODY_SCOPE_KEY] = body
        await self.app(scope, _replay(body, receive), send)

    def _check_length(self, headers: Headers) -> None:
        declared = headers.get("content-length")
        if declared is None:
            return
        if not declared.isdigit():
            raise _Refused(400, "invalid_request", "Content-Length is not a number")
        if int(declared) > self.limits.max_request_bytes:
            raise _Refused(413, "payload_too_large", self._too_large())

    def _too_large(self) -> str:
        return f"the request body is larger than {self.limits.max_request_bytes} bytes"

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.request_body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Refused(400, "invalid_request", "the client went away")
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limits.max_request_bytes:
                        raise _Refused(413, "payload_too_large", self._too_large())
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.limits.request_body_timeout_s:g}s",
            ) from None


def _check_target(scope: Scope) -> None:
    """No NUL in the path (decoded) or the query (still percent-encoded: a NUL
    in it is `%00`). Refused here once, not by each route and store."""
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        raise _Refused(400, "invalid_request", f"the request's path or query {NUL_PROBLEM}")


def _parsed_as_json(scope: Scope, headers: Headers) -> bool:
    """FastAPI parses a body as JSON when its type says JSON or it has none."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media:
        return media == "application/json" or media.endswith("+json")
    return str(scope.get("path", "")).startswith("/v1/") and scope.get("method") in _BODY_METHODS


def _check_json(body: bytes) -> None:
    """documents.loads' rules (depth 32, valid Unicode) before the app parses the body."""
    try:
        loads(body)
    except InvalidDocument as exc:
        raise _Refused(400, "invalid_request", f"request body: {exc}") from None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; then the client's own messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _answer(refused: _Refused, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(refused.status, refused.code, refused.message)
    if refused.status in (408, 413):
        # What is left of the body is never read: the connection cannot be reused.
        response.headers["Connection"] = "close"
    logger.info(
        "request refused",
        extra={"status": refused.status, "code": refused.code, "path": scope.get("path")},
    )
    await response(scope, receive, send)
