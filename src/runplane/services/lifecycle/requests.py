"""What a caller asks of an operation, whichever door (REST, stream, CLI) it came in by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runplane.domain.operations import OpSource
from runplane.logs import current_correlation_id


@dataclass(frozen=True, slots=True)
class OperationRequest:
    runtime_id: str
    op_source: OpSource
    job_id: str | None = None
    """Idempotency: a repeat of a finished job_id returns the first result."""
    source_ref: str = field(default_factory=current_correlation_id)
    """The trigger's correlation id (a REST request id, a stream job id): by default
    the one of the request or entry being handled (runplane.logs)."""
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
    restricted: bool = False
    """A team key: its spec must pass the team policy (services/admission.py)."""
