"""Firing a timeout or an idle rule: the ordinary operation (stop, pause or
remove) through the lifecycle, as the reconciler's drain does: one op-log
entry, its events, the runtime's lease. Reasons `ttl_expired` and `idle`."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from runplane.domain.errors import RETRYABLE
from runplane.domain.operations import OpKind, OpSource, StopReason
from runplane.domain.results import OperationResult
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle

logger = logging.getLogger(__name__)

OPS = {"stop": OpKind.STOP, "pause": OpKind.PAUSE, "remove": OpKind.REMOVE}

FIRED = Counter(
    "runplane_runtime_timers_fired_total",
    "Timeouts and idle rules fired, by reason and result.",
    ["reason", "result"],
)


async def fire(
    lifecycle: Lifecycle, runtime_id: str, action: str, reason: StopReason
) -> OperationResult | None:
    """Run `action` on the runtime for `reason`; None when it could not be
    asked (a store away): the caller tries again next round."""
    op = OPS.get(action, OpKind.STOP)
    request = OperationRequest(
        runtime_id=runtime_id,
        op_source=OpSource.RECONCILER,
        reason=str(reason),
        actor=f"system:{'timeout' if reason is StopReason.TTL_EXPIRED else 'idle'}",
    )
    fields = {"runtime_id": runtime_id, "op": str(op), "reason": str(reason)}
    try:
        result = await lifecycle[op].handle(request)
    except Exception as exc:
        logger.warning("timer operation failed", extra=fields | {"error": repr(exc)})
        FIRED.labels(reason=str(reason), result="failed").inc()
        return None
    outcome = "done" if result.ok else "refused"
    if not result.ok and result.error_code in RETRYABLE:
        outcome = "retry"
    FIRED.labels(reason=str(reason), result=outcome).inc()
    logger.info(
        "timer fired",
        extra=fields | {"outcome": outcome, "error_code": str(result.error_code or "")},
    )
    return result


def final(result: OperationResult | None) -> bool:
    """Whether the rule is spent: done, or refused for good (not a busy lease,
    not a store away)."""
    return result is not None and (result.ok or result.error_code not in RETRYABLE)
