"""Reporting a health observation: one event on `runtime:health_events`, the
runtime's health_snapshots row, a metric.

The monitor and the reconciler share one reporter, so a container's end is
reported once even when both notice it: `terminal_reported` remembers, per
runtime, the container whose end was already published."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.reactions import TERMINAL_EVENTS, HealthSnapshot
from runplane.ports.health import HealthEventPublisher, HealthSnapshotStore
from runplane.ports.system import Clock

logger = logging.getLogger(__name__)

HEALTH_EVENTS = Counter(
    "runplane_health_events_total", "Health events reported, by type.", ["event_type"]
)


class HealthReporter:
    def __init__(
        self, publisher: HealthEventPublisher, snapshots: HealthSnapshotStore, clock: Clock
    ) -> None:
        self.publisher = publisher
        self.snapshots = snapshots
        self.clock = clock
        self._terminal: dict[str, str] = {}

    def terminal_reported(self, runtime_id: str, container_id: str) -> bool:
        """Whether the end of `container_id` was already reported for `runtime_id`."""
        return self._terminal.get(runtime_id) == container_id

    def forget(self, runtime_id: str) -> None:
        """Drop what is remembered about a runtime no longer watched."""
        self._terminal.pop(runtime_id, None)

    async def report(
        self,
        runtime_id: str,
        container_id: str,
        event_type: HealthEventType,
        details: Mapping[str, Any] | None = None,
    ) -> HealthEvent:
        """Publish the event (raises StoreUnavailable if Redis is down: nothing
        is remembered then, so the caller reports again later), then keep the
        snapshot row (best effort: the event is what counts)."""
        event = HealthEvent(
            runtime_id=runtime_id,
            container_id=container_id,
            event_type=event_type,
            occurred_at=self.clock.now(),
            details=dict(details or {}),
        )
        await self.publisher.publish(event)
        HEALTH_EVENTS.labels(event_type=str(event_type)).inc()
        if event_type in TERMINAL_EVENTS:
            self._terminal[runtime_id] = container_id
        fields = {"runtime_id": runtime_id, "container_id": container_id}
        logger.info("health event reported", extra={**fields, "event_type": str(event_type)})
        try:
            await self.snapshots.upsert(HealthSnapshot.of(event))
        except Exception as exc:
            logger.warning(
                "health snapshot not saved", extra={**fields, "error": repr(exc)}, exc_info=exc
            )
        return event

    async def publish(self, event: HealthEvent) -> None:
        """`report` an event another watcher made (the exit watcher of this
        instance's own host, as a HealthEventPublisher): an end the monitor
        reported already is not reported twice, and one reported here is not
        reported again by the monitor."""
        fields = (event.runtime_id, event.container_id, event.event_type, event.details)
        if event.event_type in TERMINAL_EVENTS:
            await self._report_once(*fields)
        else:
            await self.report(*fields)

    async def report_end(self, runtime_id: str, info: ContainerInfo) -> HealthEvent:
        """Report that the container in `info` ended (or vanished), once: an end
        another watcher sharing this reporter reported already (the monitor and
        the reconciler may find it at once) is returned, not published again."""
        return await self._report_once(
            runtime_id, info.container_id, terminal_event_of(info), terminal_details(info)
        )

    async def _report_once(
        self,
        runtime_id: str,
        container_id: str,
        event_type: HealthEventType,
        details: Mapping[str, Any],
    ) -> HealthEvent:
        """Claimed before the publish (another caller waits on nothing and skips),
        released if the publish fails, so the end is reported again later."""
        if self.terminal_reported(runtime_id, container_id):
            return HealthEvent(
                runtime_id, container_id, event_type, self.clock.now(), dict(details)
            )
        before = self._terminal.get(runtime_id)
        self._terminal[runtime_id] = container_id
        try:
            return await self.report(runtime_id, container_id, event_type, details)
        except BaseException:
            if self._terminal.get(runtime_id) == container_id:
                if before is None:
                    self._terminal.pop(runtime_id, None)
                else:
                    self._terminal[runtime_id] = before
            raise


def terminal_event_of(info: ContainerInfo) -> HealthEventType:
    """MISSING: disappeared; an OOM kill only when the driver says so (a SIGKILL
    alone is never taken for one); any other end: exited."""
    if info.state is ContainerState.MISSING:
        return HealthEventType.CONTAINER_DISAPPEARED
    if info.oom_killed:
        return HealthEventType.CONTAINER_OOM
    return HealthEventType.CONTAINER_EXITED


def terminal_details(info: ContainerInfo) -> dict[str, object]:
    details: dict[str, object] = {"detail": info.detail}
    if info.state is not ContainerState.MISSING:
        details.update(exit_code=info.exit_code, signal=info.signal)
    return details
