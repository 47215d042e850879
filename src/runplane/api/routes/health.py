"""A runtime's health over REST: `GET /v1/runtimes/{id}/health` answers its
engine-health summary, its health snapshot row (the latest event the monitor
reported, with details) and its recent health events, newest first.

Wiring: include `router`; the ApiContext carries its HealthSources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from runplane.api.auth import Context, Key, context_of
from runplane.api.context import HealthSources
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS
from runplane.api.routes.runtimes import visible_record
from runplane.api.schemas.enums import closed_field
from runplane.domain.errors import ErrorCode
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.reactions import HealthSnapshot, HealthSummary
from runplane.domain.statuses import Status

router = APIRouter(prefix="/v1", tags=["health"])


class HealthEventOut(BaseModel):
    event_type: HealthEventType
    container_id: str
    occurred_at: datetime
    details: dict[str, Any]

    @classmethod
    def of(cls, event: HealthEvent) -> HealthEventOut:
        return cls(
            event_type=str(event.event_type),
            container_id=event.container_id,
            occurred_at=event.occurred_at,
            details=event.details,
        )


class HealthSnapshotOut(BaseModel):
    event_type: HealthEventType
    summary: HealthSummary
    container_id: str
    observed_at: datetime
    details: dict[str, Any]

    @classmethod
    def of(cls, row: HealthSnapshot) -> HealthSnapshotOut:
        return cls(
            event_type=str(row.event_type),
            summary=str(row.summary),
            container_id=row.container_id,
            observed_at=row.observed_at,
            details=row.details,
        )


class RuntimeHealthOut(BaseModel):
    runtime_id: str
    status: Status
    engine_health: str | None = closed_field(HealthSummary)
    """The summary on the record: healthy, probe_failed, inspect_unhealthy,
    exited, oom, disappeared, host_down (null before the first health event)."""
    snapshot: HealthSnapshotOut | None
    events: list[HealthEventOut]


async def health_sources(request: Request) -> HealthSources:
    sources = context_of(request).health
    if sources is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "health monitoring is not configured")
    return sources


Sources = Annotated[HealthSources, Depends(health_sources)]


@router.get(
    "/runtimes/{runtime_id}/health",
    response_model=RuntimeHealthOut,
    responses=ERRORS,
    operation_id="get_runtime_health",
)
async def runtime_health(
    runtime_id: str,
    ctx: Context,
    key: Key,
    sources: Sources,
    limit: Annotated[int, Query(ge=1, le=200, description="recent events to show")] = 20,
) -> RuntimeHealthOut:
    """The runtime's health: the engine's and the probes' latest verdicts and
    its recent health events, newest first."""
    record = await visible_record(ctx, key, runtime_id)
    row = await sources.snapshots.get(runtime_id)
    events = await sources.events.recent(runtime_id, limit=limit)
    return RuntimeHealthOut(
        runtime_id=record.runtime_id,
        status=str(record.status),
        engine_health=record.engine_health,
        snapshot=HealthSnapshotOut.of(row) if row is not None else None,
        events=[HealthEventOut.of(event) for event in events],
    )
