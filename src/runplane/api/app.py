"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane import __version__
from runplane.api.concurrency import KeySlots, SharedReads
from runplane.api.context import ApiContext
from runplane.api.docs import install_docs
from runplane.api.errors import error_response, install_error_handlers
from runplane.api.fast_ops import FastOperations
from runplane.api.limits import Outage, RateLimited, RequestLimitsMiddleware
from runplane.api.openapi import install_openapi, operation_id_of
from runplane.api.routes import (
    events,
    health,
    hooks,
    hosts,
    jobs,
    keys,
    operations,
    runtime_output,
    runtime_settings,
    runtimes,
    snapshots,
    status,
    teams,
    webhooks,
)
from runplane.api.ui import install_ui
from runplane.domain.records import RuntimeRecord
from runplane.logs import REQUEST_ID_HEADER, correlation, request_id_from


class RequestIdMiddleware:
    """Each HTTP request runs under a correlation id: its valid `X-Request-ID`,
    else a new one, echoed in the response's `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with correlation(request_id):
            await self.app(scope, receive, send_with_id)


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside every other layer, so a 500 answer and the crash it logs carry the id too.
        # The limits come next: before routing and authentication read anything.
        # The direct path for operation calls sits inside the limits, which it relies on.
        limits = self.state.context.limits
        inner = super().build_middleware_stack()
        if self.state.fast_operations:
            inner = FastOperations(inner, self)
        return RequestIdMiddleware(RequestLimitsMiddleware(inner, limits))


WAIT_POLL_S = 0.1
"""How often a wait reads its runtime; the read is shared by every wait on it."""


async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
    response = error_response(429, exc.code, exc.message)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def create_app(context: ApiContext, *, fast_operations: bool = True) -> FastAPI:
    """`fast_operations=False` leaves every call to FastAPI's routing (the tests
    that compare both paths use it)."""
    app = _App(
        title="runplane",
        version=__version__,
        description="Lifecycle control plane for runtimes: processes and containers.",
        docs_url=None,  # install_docs serves them from local assets
        redoc_url=None,
        generate_unique_id_function=operation_id_of,
    )
    app.state.context = context
    app.state.fast_operations = fast_operations
    app.state.wait_slots = KeySlots("waits", context.limits.max_waits_per_key)
    app.state.stream_slots = KeySlots("event streams", context.limits.max_streams_per_key)
    app.state.rate_limit_outage = Outage()
    app.state.wait_reads = SharedReads[RuntimeRecord | None](WAIT_POLL_S)
    install_error_handlers(app)
    app.add_exception_handler(RateLimited, _rate_limited)  # type: ignore[arg-type]
    install_openapi(app)
    install_docs(app)
    app.include_router(runtimes.router)
    app.include_router(runtime_settings.router)
    app.include_router(health.router)
    app.include_router(operations.router)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(keys.router)
    app.include_router(teams.router)
    app.include_router(status.router)
    app.include_router(hosts.router)
    app.include_router(hooks.router)
    app.include_router(snapshots.router)
    app.include_router(runtime_output.router)
    install_ui(app)
    return app
