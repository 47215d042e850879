"""What the health events consumer last published to `runtime:snapshots` for
each runtime, so a (status, summary) is published only when it changes.

Remembered in memory: after a restart each runtime's first event publishes
once. A publish that fails is not remembered, so the runtime's next event (or
next batch) publishes it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import Counter

from runplane.domain.health.reactions import RuntimeSnapshot
from runplane.domain.records import RuntimeRecord
from runplane.ports.health import SnapshotPublisher
from runplane.ports.system import Clock

logger = logging.getLogger(__name__)

SNAPSHOTS_PUBLISHED = Counter(
    "runplane_runtime_snapshots_published_total", "Entries published to runtime:snapshots."
)


def shown(record: RuntimeRecord) -> tuple[str, str]:
    return str(record.status), record.engine_health or ""


class Published:
    def __init__(self, publisher: SnapshotPublisher, clock: Clock) -> None:
        self.publisher = publisher
        self.clock = clock
        self._last: dict[str, tuple[str, str]] = {}

    async def publish_if_changed(self, record: RuntimeRecord) -> None:
        await self.publish_changed([record])

    async def publish_changed(self, records: Iterable[RuntimeRecord]) -> None:
        """Publish, in order and in one round trip, each record's (status,
        summary) that differs from the last one published (or queued here)
        for its runtime; a failure is logged, and nothing of it remembered."""
        queued: dict[str, tuple[str, str]] = {}
        snapshots: list[RuntimeSnapshot] = []
        now = self.clock.now()
        for record in records:
            state = shown(record)
            runtime_id = record.runtime_id
            if queued.get(runtime_id, self._last.get(runtime_id)) == state:
                continue
            queued[runtime_id] = state
            snapshots.append(RuntimeSnapshot(runtime_id, state[0], state[1], now))
        if not snapshots:
            return
        try:
            if len(snapshots) == 1:
                await self.publisher.publish(snapshots[0])
            else:
                await self.publisher.publish_many(snapshots)
        except Exception as exc:
            logger.warning(
                "runtime snapshots not published",
                extra={"runtime_ids": sorted(queued)[:20], "error": repr(exc)},
                exc_info=exc,
            )
            return
        self._last.update(queued)
        SNAPSHOTS_PUBLISHED.inc(len(snapshots))
