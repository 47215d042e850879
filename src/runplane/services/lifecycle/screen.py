"""What an operation checks before it takes the runtime's lease."""

from __future__ import annotations

import logging

from runplane.domain.errors import ErrorCode, StoreUnavailable
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.services.lifecycle.attempt import Attempt
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.outcomes import Outcomes

logger = logging.getLogger(__name__)

NO_SUCH_RUNTIME = "no such runtime"
"""The one answer for a runtime that does not exist or that the caller cannot see."""


def visible(attempt: Attempt, record: RuntimeRecord) -> bool:
    scope = attempt.request.team_scope
    return scope is None or record.team_id == scope


async def screen(
    problem: str | None, deps: Dependencies, outcomes: Outcomes, attempt: Attempt
) -> OperationResult | None:
    """Before the lease: the answer for a call refused outright (`problem`, the
    request's validation), else None.

    A caller that cannot see the runtime is answered `not_found` without
    touching its lease, as for a runtime that does not exist: taking it would
    answer `conflict` while the runtime is busy (an existence oracle) and hold
    off its own team's calls. An admin's (or the system's) call sees every
    runtime: it is not read here, and learns the runtime's team (for its
    job_id) from the record it loads under the lease. A runtime the caller's
    team was found to own is not read again (owners.py: a team never
    changes); any other is read every time, so another team's runtime takes
    as long to refuse as a missing one (no timing oracle either)."""
    request = attempt.request
    if problem:
        return await outcomes.failure(attempt, ErrorCode.INVALID_REQUEST, problem)
    if request.team_scope is None:
        return None
    if deps.owners.team_of(request.runtime_id) == request.team_scope:
        return None  # the caller's own runtime, as read before: a team never changes
    try:
        named = await deps.runtimes.get(request.runtime_id)
    except StoreUnavailable as exc:
        return await outcomes.failure(attempt, ErrorCode.SERVICE_UNAVAILABLE, str(exc))
    except Exception as exc:
        logger.exception("operation crashed", extra=outcomes.log_fields(attempt))
        return await outcomes.failure(attempt, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    if named is None or not visible(attempt, named):
        return await outcomes.failure(attempt, ErrorCode.NOT_FOUND, NO_SUCH_RUNTIME)
    deps.owners.learn(named.runtime_id, named.team_id)  # only what the memory answers
    return None


async def learn_team(deps: Dependencies, attempt: Attempt) -> None:
    """For an admin's or the system's job ending before its load (its lease
    refused): the runtime's team, which owns the call's log entry, read without
    the lease. Best effort: the entry goes without a team if the record cannot
    be read (its failure is the answer either way)."""
    if attempt.team_id is not None or not attempt.request.job_id:
        return
    try:
        named = await deps.runtimes.get(attempt.request.runtime_id)
    except Exception:
        logger.warning("runtime's team not read", extra=outcomes_fields(attempt), exc_info=True)
        return
    attempt.team_id = named.team_id if named else None


def outcomes_fields(attempt: Attempt) -> dict[str, object]:
    return {"runtime_id": attempt.request.runtime_id[:128], "job_id": attempt.request.job_id}
