"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from runplane import __version__
from runplane.api.context import ApiContext
from runplane.api.errors import install_error_handlers
from runplane.api.routes import (
    events,
    health,
    jobs,
    keys,
    operations,
    runtimes,
    status,
    webhooks,
)


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="runplane",
        version=__version__,
        description="Lifecycle control plane for runtimes: processes and containers.",
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(runtimes.router)
    app.include_router(health.router)
    app.include_router(operations.router)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(keys.router)
    app.include_router(status.router)
    return app
