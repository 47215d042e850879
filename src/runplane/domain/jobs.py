"""Jobs: lifecycle work that arrives on a Redis stream, and the result each gets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import STOP_REASONS, OpKind, Outcome
from runplane.domain.seed_layout import SEED_ID_FIELD

MAX_FIELD_CHARS = 64 * 1024
"""A larger field is refused as invalid_request rather than stored or logged."""


def submission_problem(op: OpKind, reason: str, has_spec: bool) -> str | None:
    """Why a job consumer would refuse a job of `op` with this reason and a
    spec or none (the message its result gives: workers/jobs/codec.py), or
    None. Checked where jobs are submitted over REST and by the CLI, so a job
    bound to fail is refused at once instead of answered later."""
    if op is OpKind.STOP and reason not in STOP_REASONS:
        return f"stop needs a reason, one of: {', '.join(sorted(STOP_REASONS))}"
    if op is OpKind.PATCH and not has_spec:
        return "patch needs a spec (a JSON object)"
    if has_spec and op not in (OpKind.START, OpKind.PATCH):
        return f"{op} takes no spec"
    return None


@dataclass(frozen=True, slots=True)
class Job:
    """A decoded, validated job entry."""

    op: OpKind
    runtime_id: str
    job_id: str
    source_ref: str
    reason: str = ""
    team_id: str | None = None
    spec: dict[str, Any] | None = None
    requested_at_ms: int | None = None
    actor: str = "system:stream"
    """Who asked: the API key id of a job submitted over REST (`POST /v1/jobs`)."""
    restricted: bool = False
    """Submitted by a team key over REST: held to the team policy like its REST
    calls. Producers writing to Redis directly are operators (docs/security.md)."""
    seed_layout: bool = False
    """The entry named its runtime `game_id`: its result does too."""


@dataclass(frozen=True, slots=True)
class JobResult:
    """What `runtime:job_results` receives for every consumed job entry."""

    job_id: str
    runtime_id: str
    op: str
    outcome: Outcome
    finished_at_ms: int
    error_code: ErrorCode | None = None
    error_message: str = ""
    status: str = ""
    container_id: str = ""
    engine_endpoint: str = ""
    seed_layout: bool = False
    """Answer a job in the seeds' layout in that layout: `game_id`, not `runtime_id`."""

    def as_fields(self) -> dict[str, str]:
        """Flat string fields, as the stream carries them."""
        return {
            "job_id": self.job_id,
            SEED_ID_FIELD if self.seed_layout else "runtime_id": self.runtime_id,
            "op": self.op,
            "outcome": str(self.outcome),
            "error_code": str(self.error_code or ""),
            "error_message": self.error_message,
            "status": self.status,
            "container_id": self.container_id,
            "engine_endpoint": self.engine_endpoint,
            "finished_at_ms": str(self.finished_at_ms),
        }
