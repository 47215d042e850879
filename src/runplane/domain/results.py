"""The result every operation returns: business outcomes are data, never exceptions."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import Outcome
from runplane.domain.records import RuntimeRecord


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
