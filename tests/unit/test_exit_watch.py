"""The agent's exit watcher: a runtime that was live and is no longer is
reported once, as the docker event stream would report it."""

from __future__ import annotations

import pytest

from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.testing.driver import InMemoryDriver
from runplane.testing.health import InMemoryHealthEvents
from runplane.workers.exit_watch import ExitWatcher
from tests.support.clock import FakeClock


class Failing(InMemoryHealthEvents):
    fail = False

    async def publish(self, event: HealthEvent) -> None:
        if self.fail:
            raise ConnectionError("redis is away")
        await super().publish(event)


async def test_ends_are_reported_once_each_and_the_first_look_only_learns() -> None:
    driver, events = InMemoryDriver(), InMemoryHealthEvents()
    watcher = ExitWatcher(driver, events, FakeClock())
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    b = (await driver.start("rt-b", {"command": ["x"]})).container_id
    driver.exit(a, exit_code=3)
    assert await watcher.look() == []  # what ended before the first look is not ours
    c = (await driver.start("rt-c", {"command": ["x"]})).container_id
    driver.exit(c, exit_code=1)
    driver.vanish(b)
    reported = await watcher.look()
    assert {(e.runtime_id, e.container_id, e.event_type) for e in reported} == {
        ("rt-b", b, HealthEventType.CONTAINER_DISAPPEARED),
    }  # c was never seen live
    d = (await driver.start("rt-d", {"command": ["x"]})).container_id
    await watcher.look()
    driver.exit(d, exit_code=2)
    [ended] = await watcher.look()
    assert (ended.runtime_id, ended.event_type) == ("rt-d", HealthEventType.CONTAINER_EXITED)
    assert ended.details["exit_code"] == 2
    assert await watcher.look() == []
    assert len(events.events) == 2


async def test_an_end_not_published_is_reported_on_the_next_look() -> None:
    driver, events = InMemoryDriver(), Failing()
    watcher = ExitWatcher(driver, events, FakeClock())
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    await watcher.look()
    driver.exit(a)
    events.fail = True
    with pytest.raises(ConnectionError):
        await watcher.look()
    events.fail = False
    [ended] = await watcher.look()
    assert (ended.runtime_id, ended.event_type) == ("rt-a", HealthEventType.CONTAINER_EXITED)
