"""What a caller asks of an operation, whichever door (REST, stream, CLI) it came in by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runplane.domain.operations import OpSource


@dataclass(frozen=True, slots=True)
class OperationRequest:
    runtime_id: str
    op_source: OpSource
    job_id: str | None = None
    """Idempotency: a repeat of a finished job_id returns the first result."""
    source_ref: str = ""
    """Opaque reference of the trigger: a stream entry id, a request id."""
    reason: str = ""
    """Why: required for stop (a StopReason), free text elsewhere."""
    actor: str = ""
    """Who asked: an API key id, `system:reconciler`, ..."""
    team_scope: str | None = None
    """When set, only a runtime of this team is visible (others are not_found)."""
    spec: dict[str, Any] | None = None
    """start: optional replacement spec; patch: the new spec (required)."""
    lease_wait_ms: int = 0
    """0: answer conflict at once when the lease is held (REST); >0: wait (streams)."""
