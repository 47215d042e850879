"""Idle rules (issue 16). A running runtime with an idle rule is idle when
nothing has kept it busy for `after_s`: no connection open to a port its spec
declares, seen on its host, and no `POST .../activity`. Its clock starts at
the latest of: its last operation (a start, a resume), its last busy sighting.

Each round reads the idle-watched records (one indexed query: running, with
a rule) and asks the hosts about those due for a look, each every quarter of
its `after_s` (bounded): one `connections` call per host and driver (the
local host reads /proc itself). A runtime seen busy gets `active_at` = now; a
runtime whose host cannot tell (agent away, namespace unreadable) counts as
busy: it is never stopped on a guess. An idle one gets its action (stop or
pause) with reason `idle`. A runtime with no declared port is idle unless a
platform posts activity: there is nothing to watch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta

from runplane.domain.connection_calls import MAX_ITEMS, PortsOf, declared_ports
from runplane.domain.operations import StopReason
from runplane.domain.records import RuntimeRecord
from runplane.domain.runtime_settings import IdleRule
from runplane.ports.connections import ConnectionCounter
from runplane.ports.drivers import DriverRouter
from runplane.ports.runtime_settings import RuntimeSettingsStore
from runplane.ports.system import Clock
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.remote_driver import RemoteDriver
from runplane.services.runtime_ops.fire import fire

logger = logging.getLogger(__name__)


class ConnectionProbe:
    """Asks each runtime's host: the local counter for this instance's own
    host, the host's agent (a `connections` call) for any other."""

    def __init__(self, local: ConnectionCounter | None, router: DriverRouter | None) -> None:
        self.local = local
        self.router = router

    async def count(self, records: Sequence[RuntimeRecord]) -> dict[str, int | None]:
        groups: dict[tuple[str | None, str], list[RuntimeRecord]] = defaultdict(list)
        for record in records:
            groups[(record.host_id, record.driver)].append(record)
        counts: dict[str, int | None] = {}
        answers = await asyncio.gather(*(self._ask(h, d, rs) for (h, d), rs in groups.items()))
        for answer in answers:
            counts.update(answer)
        return counts

    async def _ask(
        self, host_id: str | None, driver: str, records: list[RuntimeRecord]
    ) -> dict[str, int | None]:
        asked = [r for r in records if r.container_id and declared_ports(r.spec)]
        # Nothing to watch (no port, no container): only activity keeps it up.
        counts: dict[str, int | None] = {r.runtime_id: 0 for r in records}
        counts.update({r.runtime_id: None for r in asked})  # unknown until answered
        if not asked:
            return counts
        items: list[PortsOf] = [(r.container_id or "", declared_ports(r.spec)) for r in asked]
        answer: list[int | None] = [None] * len(asked)
        try:
            local_host = self.router.local_host_id if self.router is not None else None
            if self.router is None or host_id is None or host_id == local_host:
                if self.local is not None:
                    answer = await self.local.count(driver, items)
            else:
                remote = self.router.driver(host_id, driver)
                if isinstance(remote, RemoteDriver):
                    answer = []
                    for start in range(0, len(items), MAX_ITEMS):
                        answer += await remote.open_connections(items[start : start + MAX_ITEMS])
        except Exception as exc:  # host away: not known this round, so busy
            logger.info("connections not counted", extra={"host_id": host_id, "error": repr(exc)})
        counts.update({r.runtime_id: c for r, c in zip(asked, answer, strict=False)})
        return counts


class IdleWatcher:
    def __init__(
        self,
        lifecycle: Lifecycle,
        store: RuntimeSettingsStore,
        clock: Clock,
        probe: ConnectionProbe,
        *,
        floor_s: float = 1.0,
        cap_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifecycle = lifecycle
        self.store = store
        self.clock = clock
        self.probe = probe
        self.floor_s = floor_s
        self.cap_s = cap_s
        self._monotonic = monotonic
        self._next_look: dict[str, float] = {}

    def next_look_in_s(self) -> float | None:
        """Seconds until the next runtime watched is due a look (None: none is
        watched). A runtime watched since the last round is looked at on the
        first round that finds it."""
        if not self._next_look:
            return None
        return min(self._next_look.values()) - self._monotonic()

    async def check_once(self) -> list[str]:
        """One round; the runtimes found idle (their action asked for)."""
        watched = await self.store.idle_watched()
        mono = self._monotonic()
        self._next_look = {
            r.runtime_id: self._next_look[r.runtime_id]
            for r in watched
            if r.runtime_id in self._next_look
        }
        due = [r for r in watched if self._next_look.get(r.runtime_id, 0.0) <= mono]
        if not due:
            return []
        counts = await self.probe.count(due)
        now = self.clock.now()
        busy = [r.runtime_id for r in due if counts.get(r.runtime_id) != 0]
        await self.store.mark_active(busy, now)
        idle: list[RuntimeRecord] = []
        for record in due:
            rule = IdleRule(record.idle_after_s or 0)
            self._next_look[record.runtime_id] = mono + rule.check_period_s(
                self.floor_s, self.cap_s
            )
            if record.runtime_id in busy:
                continue
            since = max(
                t
                for t in (record.active_at, record.last_op_at, record.started_at, record.created_at)
                if t is not None
            )
            if now - since >= timedelta(seconds=rule.after_s):
                idle.append(record)
        await asyncio.gather(
            *(
                fire(self.lifecycle, r.runtime_id, r.idle_action or "stop", StopReason.IDLE)
                for r in idle
            )
        )
        return [r.runtime_id for r in idle]
