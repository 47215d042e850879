"""Timeouts (issue 16): each round, the records whose deadline has passed
(one indexed query, earliest first) get their `on_timeout` operation with
reason `ttl_expired`, then lose the deadline (it fires once).

The deadline is wall-clock: set at create (create time + timeout_s) or by
`POST .../timeout` (call time + timeout_s), and it runs on while the runtime
is stopped or paused. When it passes: a runtime the action applies to gets
it; one it does not apply to (stop on a stopped runtime, pause on a paused
one, remove on a removed one) simply loses the deadline; one in a transient
status (an operation under way) is looked at again next round. The deadline
is cleared only after the operation, compare-and-swapped on the value read,
so a deadline extended meanwhile is kept, and a leader that dies between
the two fires it again (stop, pause and remove replay harmlessly)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from runplane.domain.operations import StopReason
from runplane.domain.records import Keep, RuntimeRecord
from runplane.domain.statuses import TRANSIENT, Status
from runplane.ports.runtime_settings import RuntimeSettingsStore
from runplane.ports.system import Clock
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_ops.fire import final, fire

logger = logging.getLogger(__name__)

APPLIES = {
    "stop": frozenset({Status.RUNNING, Status.PAUSED, Status.ENGINE_UNREACHABLE, Status.ERROR}),
    "pause": frozenset({Status.RUNNING}),
    "remove": frozenset(Status) - TRANSIENT - {Status.REMOVED},
}


class TimeoutFirer:
    def __init__(
        self,
        lifecycle: Lifecycle,
        store: RuntimeSettingsStore,
        clock: Clock,
        *,
        batch: int = 100,
        parallel: int = 8,
    ) -> None:
        self.lifecycle = lifecycle
        self.store = store
        self.clock = clock
        self.batch = batch
        self._slots = asyncio.Semaphore(parallel)

    async def fire_due(self) -> int:
        """One round; how many deadlines were spent."""
        due = await self.store.due_timeouts(self.clock.now(), limit=self.batch)
        spent = await asyncio.gather(*(self._one(record) for record in due))
        return sum(spent)

    async def next_deadline(self, *, within_s: float) -> datetime | None:
        """The earliest deadline up to `within_s` from now, passed or not (the
        same indexed query as a round's)."""
        horizon = self.clock.now() + timedelta(seconds=within_s)
        first = await self.store.due_timeouts(horizon, limit=1)
        return first[0].timeout_at if first else None

    async def _one(self, record: RuntimeRecord) -> bool:
        if record.status in TRANSIENT or record.timeout_at is None:
            return False
        action = record.on_timeout or "stop"
        if record.status in APPLIES.get(action, APPLIES["stop"]):
            async with self._slots:
                result = await fire(
                    self.lifecycle, record.runtime_id, action, StopReason.TTL_EXPIRED
                )
            if not final(result):
                return False
        cleared = await self.store.set_timeout(
            record.runtime_id,
            expected=record.timeout_at,
            timeout_at=None,
            on_timeout=Keep.KEEP,
            at=self.clock.now(),
        )
        return cleared is not None
