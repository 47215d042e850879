"""The reporter reports a container's end once, even when the monitor, the
reconciler and the host's exit watcher find it at the same moment; an end
whose publish failed is reported again."""

from __future__ import annotations

import asyncio

import pytest

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.services.health.reporter import HealthReporter
from runplane.testing.health import InMemoryHealthEvents, InMemoryHealthSnapshotStore
from tests.support.clock import FakeClock

ENDED = ContainerInfo("c-1", ContainerState.EXITED, exit_code=1, detail="exited with code 1")


class Slow(InMemoryHealthEvents):
    """Yields before it publishes, so concurrent reports interleave; can fail."""

    fail = False

    async def publish(self, event: HealthEvent) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("redis is away")
        await super().publish(event)


def reporter_on(events: Slow) -> HealthReporter:
    return HealthReporter(events, InMemoryHealthSnapshotStore(), FakeClock())


async def test_an_end_found_by_three_at_once_is_published_once() -> None:
    events = Slow()
    reporter = reporter_on(events)
    told = HealthEvent("rt-1", "c-1", HealthEventType.CONTAINER_EXITED, FakeClock().now(), {})
    await asyncio.gather(
        reporter.report_end("rt-1", ENDED),
        reporter.report_end("rt-1", ENDED),
        reporter.publish(told),
    )
    assert [(e.runtime_id, e.container_id) for e in events.events] == [("rt-1", "c-1")]


async def test_an_end_not_published_is_reported_again() -> None:
    events = Slow()
    reporter = reporter_on(events)
    events.fail = True
    with pytest.raises(ConnectionError):
        await reporter.report_end("rt-1", ENDED)
    assert not reporter.terminal_reported("rt-1", "c-1")
    events.fail = False
    await reporter.report_end("rt-1", ENDED)
    assert len(events.events) == 1
