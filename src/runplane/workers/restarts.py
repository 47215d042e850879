"""Restarts the restart policy decided on, each after its backoff delay.

At most one restart is pending (or being planned) per runtime. The delays live in this process:
if it stops first, the reconciler finds the runtime still `engine_unreachable`
and asks again (`on_unreachable(record, None)`), so a restart is delayed, not
lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter

from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import is_failure
from runplane.domain.records import RuntimeRecord
from runplane.services.health.restart_policy import RestartPolicyService

logger = logging.getLogger(__name__)

RESTART_DECISIONS = Counter(
    "runplane_restart_policy_decisions_total",
    "Restart-policy decisions for runtimes that became unreachable.",
    ["decision"],
)


class RestartScheduler:
    def __init__(self, policy: RestartPolicyService) -> None:
        self.policy = policy
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._planning: set[str] = set()
        """Runtimes whose plan is being made (not scheduled yet)."""
        self._stopping = asyncio.Event()

    def __repr__(self) -> str:
        return "RestartScheduler()"

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    async def on_unreachable(
        self, record: RuntimeRecord, cause: HealthEvent | None, *, quiet: bool = False
    ) -> bool:
        """Schedule the runtime's restart if its policy says so; True if scheduled.
        `cause` None (not known any more) counts as a failure. `quiet`: a decline
        is logged at debug level (the reconciler asks again every round)."""
        runtime_id = record.runtime_id
        if runtime_id in self._pending or runtime_id in self._planning:
            return False
        if self._stopping.is_set():
            return False
        # Claimed before the plan's await: a second call meanwhile (the consumer
        # and the reconciler asking together) must not schedule it twice.
        self._planning.add(runtime_id)
        try:
            failed = True if cause is None else is_failure(cause)
            plan = await self.policy.plan(record, failed=failed)
        finally:
            self._planning.discard(runtime_id)
        if self._stopping.is_set():
            return False
        fields = {"runtime_id": runtime_id, "reason": plan.reason}
        if not plan.restart:
            if not quiet:
                RESTART_DECISIONS.labels(decision="declined").inc()
            logger.log(logging.DEBUG if quiet else logging.INFO, "restart declined", extra=fields)
            return False
        RESTART_DECISIONS.labels(decision="scheduled").inc()
        logger.info("restart scheduled", extra=fields | {"delay_s": round(plan.delay_s, 3)})
        reason = plan.reason if cause is None else f"{plan.reason}: {cause.event_type}"
        self._pending[runtime_id] = asyncio.create_task(
            self._restart_later(record, plan.delay_s, reason), name=f"restart {runtime_id}"
        )
        return True

    async def wait_idle(self) -> None:
        """Wait until no restart is pending (tests)."""
        while self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Nothing to poll: wait for the stop. Restarts still waiting out their
        delay are dropped then; one already under way finishes."""
        await self._stopping.wait()
        await self.wait_idle()

    async def _restart_later(self, record: RuntimeRecord, delay_s: float, reason: str) -> None:
        runtime_id = record.runtime_id
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay_s)
            if self._stopping.is_set():
                return
            await self.policy.restart(runtime_id, record.container_id, reason)
        except Exception as exc:
            logger.warning(
                "restart policy restart failed",
                extra={"runtime_id": runtime_id, "error": repr(exc)},
                exc_info=exc,
            )
        finally:
            self._pending.pop(runtime_id, None)
