"""Bodies for labels, timeouts and idle rules (issue 16)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from runplane.api.schemas.enums import closed_field
from runplane.domain.records import RuntimeRecord
from runplane.domain.runtime_settings import (
    MAX_IDLE_AFTER_S,
    MAX_TIMEOUT_S,
    MIN_IDLE_AFTER_S,
    IdleAction,
    IdleRule,
    OnTimeout,
)

TimeoutAction = Literal["stop", "pause", "remove"]


class IdleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_s: int = Field(ge=MIN_IDLE_AFTER_S, le=MAX_IDLE_AFTER_S)
    action: Literal["stop", "pause"] = "stop"

    def rule(self) -> IdleRule:
        return IdleRule(self.after_s, IdleAction(self.action))


class SetTimeoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: int | None = Field(
        ge=1,
        le=MAX_TIMEOUT_S,
        description="the deadline becomes now + timeout_s; null removes the deadline",
    )
    allow_shorten: StrictBool = Field(
        default=False,
        description="without it a deadline earlier than the current one is refused (409 "
        "timeout_would_shorten)",
    )
    on_timeout: TimeoutAction | None = Field(
        default=None, description="what fires; left out: kept (stop when none was set)"
    )


class PatchRuntimeBody(BaseModel):
    """Fields left out are kept; `idle: null` removes the idle rule; `labels`
    replaces the whole map ({} removes every label)."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, Any] | None = Field(default=None, description="the new label map")
    idle: IdleIn | None = None


class TimeoutOut(BaseModel):
    at: datetime
    on_timeout: str = closed_field(OnTimeout)


class IdleOut(BaseModel):
    after_s: int
    action: str = closed_field(IdleAction)
    active_at: datetime | None = Field(description="last seen busy (a connection, an activity)")


def timeout_of(record: RuntimeRecord) -> TimeoutOut | None:
    if record.timeout_at is None:
        return None
    return TimeoutOut(at=record.timeout_at, on_timeout=record.on_timeout or "stop")


def idle_of(record: RuntimeRecord) -> IdleOut | None:
    if record.idle_after_s is None:
        return None
    return IdleOut(
        after_s=record.idle_after_s,
        action=record.idle_action or "stop",
        active_at=record.active_at,
    )
