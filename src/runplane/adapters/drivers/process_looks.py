"""The process driver's looks at its containers (mixed into `ProcessDriver`):
one look (files and /proc) or a glance, on the loop; looks at many, in a
thread; a look that waits out an end being recorded; the waits for an end or
a state.

Nothing is polled while it can be waited for: a live runtime's end wakes a
pidfd of its process, and an end being recorded (its supervisor writing
`exit.json`) is told by the supervisor's exit notice (`process_exits`; the
supervisor itself may serve on, so its end is no sign). Polling at
`_poll_interval_s` is left for where there is no pidfd, or no notices are
heard."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from runplane.adapters.drivers.process_exits import ExitNoticeSocket
from runplane.adapters.drivers.process_files import ContainerFiles
from runplane.adapters.drivers.process_observe import Glances, Observation, observe
from runplane.adapters.drivers.process_wait import process_end
from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import ContainerGone

logger = logging.getLogger(__name__)

_SIGNAL_SETTLE_S = 2.0
_RECORD_WAIT_S = 0.05
"""Longest wait for an exit notice before looking again: a supervisor that
died before recording the end tells nothing."""


class ProcessLooks:
    _containers: Path
    _glances: Glances
    exit_notices: ExitNoticeSocket
    _settle_timeout_s: float
    _poll_interval_s: float

    async def _look(self, container_id: str) -> Observation:
        # On the loop: three small files and a /proc stat, ~0.1 ms, less than a
        # thread hand-off costs. Looks at many at once go to a thread (`_looks`).
        return self._glances.remember(observe(self._containers, container_id))

    async def _looks(self, container_ids: list[str]) -> list[Observation]:
        """Each one's glance, or else its look (those in one thread), settled
        like `_settled`'s."""
        seen: dict[str, Observation] = {}
        for container_id in container_ids:
            if (glance := self._glances.quick(container_id)) is not None:
                seen[container_id] = glance
        unknown = [c for c in container_ids if c not in seen]
        containers = self._containers
        found = await asyncio.to_thread(lambda: [observe(containers, c) for c in unknown])
        for container_id, observed in zip(unknown, found, strict=True):
            seen[container_id] = self._glances.remember(observed)
        return [await self._settled(c) if seen[c].settling else seen[c] for c in container_ids]

    async def _settled(self, container_id: str) -> Observation:
        """A look, waiting (bounded) while an end is being recorded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_timeout_s
        while True:
            # Seen running before: a stat and /proc; else the full look.
            observed = self._glances.quick(container_id) or await self._look(container_id)
            if not observed.settling or loop.time() >= deadline:
                return observed
            await self._await_record(observed, deadline - loop.time())

    async def _live(self, container_id: str) -> tuple[int, Observation]:
        """The live container's process group and the look that found it, or ContainerGone."""
        observed = await self._settled(container_id)
        if observed.pgid is None:
            raise ContainerGone(container_id)
        return observed.pgid, observed

    async def _await_end(
        self, container_id: str, timeout_s: float, live: Observation | None = None
    ) -> ContainerInfo | None:
        """The final state once the process ended, or None if it outlived
        `timeout_s`; `live` is a look just taken, when the caller has one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        settle_deadline = deadline + self._settle_timeout_s
        observed = live if live is not None else await self._look(container_id)
        while True:
            ended = observed.pgid is None
            if ended and (not observed.settling or loop.time() >= settle_deadline):
                return observed.info
            if not ended and loop.time() >= deadline:
                return None
            if observed.pgid is not None:
                left = deadline - loop.time()
                if await process_end(observed.pgid, observed.start_ticks, left) is None:
                    await asyncio.sleep(self._poll_interval_s)  # no pidfd: poll
            else:
                await self._await_record(observed, settle_deadline - loop.time())
            # Fifty stops ending together: their exit files read inline, not
            # fifty full looks queued on the thread pool.
            observed = self._glances.after_end(container_id) or await self._look(container_id)

    async def _await_record(self, settling: Observation, left_s: float) -> None:
        """Until the supervisor of an ended runtime has recorded the end (its
        notice, where notices are heard; else a poll), for at most
        `_RECORD_WAIT_S` or `left_s`."""
        wait_s = max(min(_RECORD_WAIT_S, left_s), 0.0)
        container_id = settling.info.container_id
        if not self.exit_notices.listening:
            await asyncio.sleep(min(self._poll_interval_s, wait_s))
            return
        exit_path = str(ContainerFiles(self._containers / container_id).exit)
        await self.exit_notices.told(container_id, wait_s, lambda: os.path.lexists(exit_path))

    async def _await_state(self, container_id: str, wanted: ContainerState) -> None:
        """Signals land asynchronously: wait (bounded) until the process shows
        them, so the next inspect agrees with the call that just returned."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _SIGNAL_SETTLE_S
        while True:
            observed = await self._look(container_id)
            if observed.info.state is wanted:
                return
            if observed.pgid is None:
                raise ContainerGone(container_id)
            if loop.time() >= deadline:
                logger.warning(
                    "process runtime has not reached the signalled state",
                    extra={"container_id": container_id, "state": str(wanted)},
                )
                return
            await asyncio.sleep(self._poll_interval_s)
