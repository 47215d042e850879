"""Operation kinds, their sources, stop reasons and the result every call returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from runplane.domain.errors import ErrorCode

if TYPE_CHECKING:
    from runplane.domain.records import RuntimeRecord


class OpKind(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    PATCH = "patch"
    PAUSE = "pause"
    RESUME = "resume"
    REMOVE = "remove"


class OpSource(StrEnum):
    REST = "rest"
    STREAM = "stream"
    RECONCILER = "reconciler"
    HEALTH = "health"
    CLI = "cli"


class StopReason(StrEnum):
    REQUESTED = "requested"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    TTL_EXPIRED = "ttl_expired"
    IDLE = "idle"
    ADMIN = "admin"
    ORPHANED = "orphaned"
    SHUTDOWN = "shutdown"


STOP_REASONS: frozenset[str] = frozenset(str(reason) for reason in StopReason)
"""The reasons a stop may name, as the strings requests carry."""


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class OperationResult:
    """What every operation returns. Business outcomes are data, never exceptions."""

    outcome: Outcome
    record: RuntimeRecord | None = None
    error_code: ErrorCode | None = None
    error_message: str = ""
    operation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @classmethod
    def success(cls, record: RuntimeRecord | None, *, replay: bool = False) -> OperationResult:
        return cls(Outcome.SUCCESS, record, ErrorCode.REPLAY_NO_OP if replay else None)

    @classmethod
    def failure(
        cls, code: ErrorCode, message: str, record: RuntimeRecord | None = None
    ) -> OperationResult:
        return cls(Outcome.FAILURE, record, code, message)
