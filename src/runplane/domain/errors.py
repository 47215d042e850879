"""Stable error codes (business outcomes) and the exception root (faults)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runplane.domain.statuses import Status


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_STATE = "invalid_state"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL = "internal"
    REPLAY_NO_OP = "replay_no_op"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
    ErrorCode.REPLAY_NO_OP: 200,
}

RETRYABLE: frozenset[ErrorCode] = frozenset(
    {ErrorCode.CONFLICT, ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.INTERNAL}
)
"""Failures that say nothing final about the request: a retry may succeed, so a
failed attempt does not claim its job_id / Idempotency-Key."""


class RunplaneError(Exception):
    """Root of every runplane exception. Exceptions are for faults, not outcomes."""


class RuntimeNotFound(RunplaneError):
    def __init__(self, runtime_id: str) -> None:
        super().__init__(f"runtime {runtime_id!r} not found")
        self.runtime_id = runtime_id


class RuntimeAlreadyExists(RunplaneError):
    def __init__(self, runtime_id: str) -> None:
        super().__init__(f"runtime {runtime_id!r} already exists")
        self.runtime_id = runtime_id


class CasConflict(RunplaneError):
    """A compare-and-swap matched zero rows: someone else wrote first."""

    def __init__(self, runtime_id: str, expected: str) -> None:
        super().__init__(f"runtime {runtime_id!r} is no longer {expected}")
        self.runtime_id = runtime_id


class InvalidTransition(RunplaneError):
    """A status change the transition table does not allow, refused before
    anything is written. A caller's bug, not an outcome: a lifecycle operation
    that meets it answers `invalid_state` with `reason`."""

    def __init__(self, current: Status, target: Status, reason: str) -> None:
        super().__init__(reason)
        self.current = current
        self.target = target
        self.reason = reason


class DuplicateJobId(RunplaneError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job_id {job_id!r} already has a result")
        self.job_id = job_id


class StoreUnavailable(RunplaneError):
    """The database (or Redis) cannot be reached."""


class DriverError(RunplaneError):
    """The driver failed to do what was asked (engine down, exec failed, ...)."""


class ContainerGone(DriverError):
    """The runtime's process or container no longer exists."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id!r} is gone")
        self.container_id = container_id


class InvalidSpec(RunplaneError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
