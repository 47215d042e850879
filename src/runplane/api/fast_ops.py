"""A direct path for the hottest calls, `POST /v1/runtimes/{runtime_id}/{op}`.

Under load FastAPI's own machinery (its middleware layers, routing through
every route, dependency solving, the response model's validation) was about a
third of such a call's CPU. This path answers the calls it takes exactly as
the routes in routes/operations.py do: the same key check and rate limit
(auth.py), the same request to the lifecycle, the same body serialised by the
same model, and every error through the app's own exception handlers, so the
status, headers and error body are those of the routed call.

It takes a call only when nothing about it needs FastAPI to answer: no body or
a JSON object that `OperationBody` accepts, and a valid Idempotency-Key or
none. Anything else (a body to refuse, a malformed header, another content
type) goes on to FastAPI untouched, before any key lookup or rate-limit charge,
so FastAPI answers it as it always has, in its own order of checks.
tests/unit/test_fast_ops.py runs the same calls down both paths and compares
the answers."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from runplane.api.auth import authenticated, charged
from runplane.api.context import ApiContext
from runplane.api.limits import BODY_SCOPE_KEY
from runplane.api.routes.operations import ROUTED_OPS, answer, request_for
from runplane.api.schemas.runtimes import OperationBody, OperationResultOut
from runplane.domain.documents import is_valid_idempotency_key
from runplane.domain.operations import OpKind

_PATH = re.compile(
    rf"^/v1/runtimes/(?P<runtime_id>[^/]+)/(?P<op>{'|'.join(str(op) for op in ROUTED_OPS)})$"
)
"""Starlette's pattern for `{runtime_id}` (a `str` path parameter) is `[^/]+` too."""
_RESULT = TypeAdapter(OperationResultOut)
"""What FastAPI's response field serialises the route's answer with."""


class FastOperations:
    """ASGI: the calls above answered here; every other request to `app`."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self._take(scope) if scope["type"] == "http" else None
        if taken is None:
            await self.app(scope, receive, send)
            return
        op, runtime_id, headers, body, job_id = taken
        try:
            response = await self._operate(scope, op, runtime_id, headers, body, job_id)
        except Exception as exc:
            response = await self._handled(scope, receive, send, exc)
        await response(scope, receive, send)

    def _take(
        self, scope: Scope
    ) -> tuple[OpKind, str, Headers, OperationBody | None, str | None] | None:
        """The call's parts when this path answers it, else None."""
        if scope["method"] != "POST" or scope.get("root_path") or self.owner.dependency_overrides:
            return None
        matched = _PATH.match(scope["path"])
        raw: bytes | None = scope.get(BODY_SCOPE_KEY)
        if matched is None or raw is None:
            return None
        headers = Headers(scope=scope)
        job_id = headers.get("idempotency-key")
        if job_id is not None and not is_valid_idempotency_key(job_id):
            return None
        taken, body = _body(raw, headers)
        if not taken:
            return None
        return OpKind(matched["op"]), matched["runtime_id"], headers, body, job_id

    async def _operate(
        self,
        scope: Scope,
        op: OpKind,
        runtime_id: str,
        headers: Headers,
        body: OperationBody | None,
        job_id: str | None,
    ) -> Response:
        ctx: ApiContext = self.owner.state.context
        key = await authenticated(ctx, headers.get("authorization", ""))
        scope.setdefault("state", {})["api_key"] = key  # as auth.current_key's request.state
        await charged(ctx, self.owner.state.rate_limit_outage, key)
        request = request_for(op, runtime_id, key, body, job_id)
        out = answer(await ctx.lifecycle[op].handle(request))
        return Response(_RESULT.dump_json(out, by_alias=True), media_type="application/json")

    async def _handled(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> Response:
        """The app's own handler's answer for `exc`, looked up as Starlette's
        ExceptionMiddleware does (the nearest class in its MRO). An exception
        only the catch-all handler takes is raised again once answered, as
        Starlette's ServerErrorMiddleware does, so the server logs it too."""
        handlers: dict[Any, Any] = self.owner.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                break
        else:
            raise exc
        response: Response = await handler(Request(scope, receive), exc)
        if cls is Exception:
            await response(scope, receive, send)
            raise exc
        return response


def _body(raw: bytes, headers: Headers) -> tuple[bool, OperationBody | None]:
    """(True, the body as the route's `body: OperationBody | None` gets it), or
    (False, None) when FastAPI should see it: to refuse it, or to read a type
    this does not."""
    if not raw:
        return True, None
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return False, None
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            return True, OperationBody.model_validate(parsed)
    except (ValueError, ValidationError):
        pass
    return False, None
