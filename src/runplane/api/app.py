"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from runplane import __version__
from runplane.api import (
    routes_events,
    routes_health,
    routes_jobs,
    routes_operations,
    routes_runtimes,
    routes_system,
    routes_webhooks,
)
from runplane.api.context import ApiContext
from runplane.api.errors import install_error_handlers


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="runplane",
        version=__version__,
        description="Lifecycle control plane for runtimes: processes and containers.",
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(routes_runtimes.router)
    app.include_router(routes_health.router)
    app.include_router(routes_operations.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_events.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_system.router)
    return app
