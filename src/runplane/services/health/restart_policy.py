"""The restart policy of DESIGN §7: whether a runtime that became
`engine_unreachable` is restarted, after how long, and the restart itself.

- `no`: never. `on-failure`: when it failed (an OOM kill, a disappearance, a
  non-zero exit or a death by signal), not when it exited 0. `always`: either.
- At most `max_retries` restarts within `window_s`, counted from the operation
  log (restarts with op_source=health), so the count is shared by every
  instance and survives a runplane restart.
- The n-th restart in the window waits the one backoff (`domain/backoff.py`):
  `min(cap, base * 2**n)`, times a random factor in [0.5, 1) (jitter), so
  runtimes that fell together do not restart in lockstep.

The restart is the ordinary restart operation (op_source=health, one
operation-log entry, its lifecycle events). It takes the runtime's lease first
and, holding it, checks the runtime is still down with the same container
before it runs: a restart scheduled twice (the consumer and the reconciler),
or overtaken by an operator's own restart, never restarts a runtime that is
already back."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from runplane.domain.backoff import backoff_delay_s
from runplane.domain.errors import InvalidSpec
from runplane.domain.health.spec import RestartMode, RestartPolicy, restart_policy_of
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services import lease
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle

logger = logging.getLogger(__name__)

RESTART_ACTOR = "system:health"


@dataclass(frozen=True, slots=True)
class RestartPlan:
    restart: bool
    reason: str
    delay_s: float = 0.0


def plan_restart(
    policy: RestartPolicy,
    *,
    failed: bool,
    attempts: int,
    base_s: float,
    cap_s: float,
    jitter: float,
) -> RestartPlan:
    """The decision for a runtime that went down. `attempts`: restarts already
    made within the window; `jitter` in [0, 1)."""
    if policy.mode is RestartMode.NO:
        return RestartPlan(False, "restart_policy is no")
    if policy.mode is RestartMode.ON_FAILURE and not failed:
        return RestartPlan(False, "exited cleanly; restart_policy is on-failure")
    if attempts >= policy.max_retries:
        return RestartPlan(
            False, f"gave up: {attempts} restarts within {policy.window_s:g} s already"
        )
    delay_s = backoff_delay_s(attempts + 1, base_s=base_s, cap_s=cap_s, rand=lambda: jitter)
    return RestartPlan(True, f"restart_policy {policy.mode}", delay_s)


class RestartPolicyService:
    def __init__(
        self,
        lifecycle: Lifecycle,
        deps: Dependencies,
        *,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        lease_wait_ms: int = 15_000,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if backoff_base_s <= 0 or backoff_cap_s < backoff_base_s:
            raise ValueError("need 0 < backoff_base_s <= backoff_cap_s")
        self.lifecycle = lifecycle
        self.deps = deps
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_wait_ms = lease_wait_ms
        self.jitter = jitter

    async def plan(self, record: RuntimeRecord, *, failed: bool) -> RestartPlan:
        try:
            policy = restart_policy_of(record.spec)
        except InvalidSpec as exc:
            return RestartPlan(False, f"malformed restart_policy: {exc.message}")
        if policy.mode is RestartMode.NO:
            return plan_restart(policy, failed=failed, attempts=0, base_s=1, cap_s=1, jitter=0)
        return plan_restart(
            policy,
            failed=failed,
            attempts=await self.attempts(record.runtime_id, policy.window_s),
            base_s=self.backoff_base_s,
            cap_s=self.backoff_cap_s,
            jitter=self.jitter(),
        )

    async def attempts(self, runtime_id: str, window_s: float) -> int:
        """Restarts the policy made for `runtime_id` within the last `window_s`."""
        since = self.deps.clock.now() - timedelta(seconds=window_s)
        entries = await self.deps.operations.list_for_runtime(runtime_id, limit=200)
        return sum(
            1
            for entry in entries
            if entry.op is OpKind.RESTART
            and entry.op_source is OpSource.HEALTH
            and entry.started_at >= since
        )

    async def restart(
        self, runtime_id: str, container_id: str | None, reason: str
    ) -> OperationResult | None:
        """Restart the runtime if, under its lease, it is still unreachable with
        `container_id`; None when there was nothing (left) to do."""
        deps = self.deps
        token = deps.tokens.new_token()
        fields = {"runtime_id": runtime_id, "container_id": container_id}
        acquired = await lease.acquire(
            deps.leases, runtime_id, token, deps.lease_ttl_ms, self.lease_wait_ms
        )
        if not acquired:
            logger.warning("restart policy could not take the runtime's lease", extra=fields)
            return None
        async with lease.kept_alive(deps.leases, runtime_id, token, deps.lease_ttl_ms):
            record = await deps.runtimes.get(runtime_id)
            if (
                record is None
                or record.status is not Status.ENGINE_UNREACHABLE
                or record.container_id != container_id
            ):
                logger.info("restart policy found the runtime no longer down", extra=fields)
                return None
            request = OperationRequest(
                runtime_id=runtime_id,
                op_source=OpSource.HEALTH,
                reason=reason,
                actor=RESTART_ACTOR,
            )
            result = await self.lifecycle[OpKind.RESTART].run(request)
        logger.info(
            "restart policy restarted a runtime",
            extra=fields | {"outcome": str(result.outcome), "error_code": str(result.error_code)},
        )
        return result
