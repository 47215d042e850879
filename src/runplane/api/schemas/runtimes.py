"""Request and response bodies of the REST API (pydantic lives at the edges)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from runplane.api.schemas.enums import closed_field
from runplane.api.schemas.errors import ErrorBody as ErrorBody
from runplane.api.schemas.runtime_settings import (
    IdleIn,
    IdleOut,
    TimeoutAction,
    TimeoutOut,
    idle_of,
    timeout_of,
)
from runplane.domain.errors import ErrorCode
from runplane.domain.health.reactions import HealthSummary
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.runtime_settings import MAX_TIMEOUT_S, OnTimeout, RuntimeSettings
from runplane.domain.statuses import Status


class CreateRuntimeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtime_id: str | None = Field(default=None, max_length=128)
    team_id: str | None = Field(default=None, max_length=128)
    driver: str | None = Field(default=None, max_length=64)
    spec: dict[str, Any]
    start: StrictBool = True  # `0` or "yes" is a 400, not a guess
    labels: dict[str, Any] | None = Field(
        default=None, description="key/value labels (docs: syntax); 400 invalid_labels"
    )
    timeout_s: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_S, description="deadline: create time + timeout_s"
    )
    on_timeout: TimeoutAction = "stop"
    idle: IdleIn | None = None

    def settings(self) -> RuntimeSettings:
        return RuntimeSettings(
            labels=dict(self.labels or {}),
            timeout_s=self.timeout_s,
            on_timeout=OnTimeout(self.on_timeout),
            idle=self.idle.rule() if self.idle is not None else None,
        )


class OperationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=64)
    spec: dict[str, Any] | None = None


class RuntimeOut(BaseModel):
    runtime_id: str
    team_id: str
    status: Status
    version: int
    driver: str
    spec: dict[str, Any]
    container_id: str | None
    engine_endpoint: str | None
    engine_health: str | None = closed_field(
        HealthSummary, description="the latest health verdict; null before the first"
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    removed_at: datetime | None
    last_op_at: datetime | None
    status_deadline: datetime | None
    host_id: str | None = Field(
        default=None, description="the host the runtime lives on; null until placed"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutOut | None = None
    idle: IdleOut | None = None

    @classmethod
    def of(cls, record: RuntimeRecord) -> RuntimeOut:
        return cls(
            runtime_id=record.runtime_id,
            team_id=record.team_id,
            status=str(record.status),
            version=record.version,
            driver=record.driver,
            spec=record.spec,
            container_id=record.container_id,
            engine_endpoint=record.engine_endpoint,
            engine_health=record.engine_health,
            created_at=record.created_at,
            updated_at=record.updated_at,
            started_at=record.started_at,
            stopped_at=record.stopped_at,
            removed_at=record.removed_at,
            last_op_at=record.last_op_at,
            status_deadline=record.status_deadline,
            host_id=record.host_id,
            labels=record.labels,
            timeout=timeout_of(record),
            idle=idle_of(record),
        )


class RuntimeListOut(BaseModel):
    runtimes: list[RuntimeOut]
    next_cursor: str | None


class OperationResultOut(BaseModel):
    outcome: Outcome
    error_code: ErrorCode | None
    error_message: str
    operation_id: str | None
    runtime: RuntimeOut | None

    @classmethod
    def of(cls, result: OperationResult) -> OperationResultOut:
        return cls(
            outcome=str(result.outcome),
            error_code=str(result.error_code) if result.error_code else None,
            error_message=result.error_message,
            operation_id=result.operation_id,
            runtime=RuntimeOut.of(result.record) if result.record else None,
        )


class OperationEntryOut(BaseModel):
    operation_id: str
    runtime_id: str
    op: OpKind
    op_source: OpSource
    outcome: Outcome
    error_code: ErrorCode | None
    error_message: str
    job_id: str | None
    source_ref: str
    reason: str
    status_from: Status | None
    status_to: Status | None
    container_id: str | None
    actor: str
    started_at: datetime
    finished_at: datetime
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: OperationEntry) -> OperationEntryOut:
        return cls(
            operation_id=entry.operation_id,
            runtime_id=entry.runtime_id,
            op=str(entry.op),
            op_source=str(entry.op_source),
            outcome=str(entry.outcome),
            error_code=str(entry.error_code) if entry.error_code else None,
            error_message=entry.error_message,
            job_id=entry.job_id,
            source_ref=entry.source_ref,
            reason=entry.reason,
            status_from=str(entry.status_from) if entry.status_from else None,
            status_to=str(entry.status_to) if entry.status_to else None,
            container_id=entry.container_id,
            actor=entry.actor,
            started_at=entry.started_at,
            finished_at=entry.finished_at,
            details=entry.details,
        )


class OperationListOut(BaseModel):
    operations: list[OperationEntryOut]
