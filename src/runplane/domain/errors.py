"""Stable error codes (business outcomes) and the exception root (faults)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_STATE = "invalid_state"
    FORBIDDEN = "forbidden"
    """The caller's team policy does not allow this spec (command, image, ...)."""
    QUOTA_EXCEEDED = "quota_exceeded"
    """The team already has as many runtimes (or running runtimes) as its quota."""
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL = "internal"
    REPLAY_NO_OP = "replay_no_op"
    INVALID_LABELS = "invalid_labels"
    """A label key or value breaks the label syntax (domain/runtime_settings.py)."""
    INVALID_SELECTOR = "invalid_selector"
    """A `label=` selector term that is not k=v, k!=v, k or !k."""
    TIMEOUT_WOULD_SHORTEN = "timeout_would_shorten"
    """A new timeout earlier than the current deadline, without allow_shorten."""


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.QUOTA_EXCEEDED: 403,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
    ErrorCode.REPLAY_NO_OP: 200,
    ErrorCode.INVALID_LABELS: 400,
    ErrorCode.INVALID_SELECTOR: 400,
    ErrorCode.TIMEOUT_WOULD_SHORTEN: 409,
}

RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.CONFLICT,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.INTERNAL,
        ErrorCode.QUOTA_EXCEEDED,
    }
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


class DuplicateJobId(RunplaneError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job_id {job_id!r} already has a result")
        self.job_id = job_id


class StoreUnavailable(RunplaneError):
    """The database (or Redis) cannot be reached."""


class NotReady(RunplaneError):
    """A component answers but cannot serve (a Redis Cluster with a slot no node
    serves). Its message names the fault and never an address: `/readyz`, open
    to anyone, shows it."""


class DriverError(RunplaneError):
    """The driver failed to do what was asked (engine down, exec failed, ...)."""


class SpecRefused(DriverError):
    """The engine refuses what the spec asks for (an image or a network it does
    not have): the caller's to fix, so it answers invalid_request, not a 503 that
    tells clients to retry what will never succeed."""


class ContainerGone(DriverError):
    """The runtime's process or container no longer exists."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id!r} is gone")
        self.container_id = container_id


class InvalidSpec(RunplaneError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
