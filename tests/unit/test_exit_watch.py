"""The agent's exit watcher: a runtime that was live and is no longer is
reported once, as the docker event stream would report it."""

from __future__ import annotations

from collections.abc import Callable

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


class Notices:
    """ExitNotices as a test sets them: what was told, what runplane ended."""

    def __init__(self) -> None:
        self.listening = True
        self.heard: dict[str, str] = {}
        self.ours: set[str] = set()
        self.wake: Callable[[], None] | None = None

    def listen(self, wake: Callable[[], None]) -> bool:
        self.wake = wake
        return self.listening

    def take(self) -> dict[str, str]:
        heard, self.heard = self.heard, {}
        return heard

    def ended_by_runplane(self, container_id: str) -> bool:
        return container_id in self.ours


def told_watcher() -> tuple[InMemoryDriver, InMemoryHealthEvents, Notices, FakeClock, ExitWatcher]:
    driver, events, notices, clock = (
        InMemoryDriver(),
        InMemoryHealthEvents(),
        Notices(),
        FakeClock(),
    )
    watcher = ExitWatcher(driver, events, clock, notices=notices, sweep_s=15)
    return driver, events, notices, clock, watcher


async def test_a_told_end_is_reported_at_once_even_of_a_container_never_swept() -> None:
    driver, _events, notices, _clock, watcher = told_watcher()
    await watcher.look()  # the first sweep learns nothing
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    driver.exit(a, exit_code=4)
    notices.heard[a] = "rt-a"
    [ended] = await watcher.look()
    assert (ended.runtime_id, ended.event_type) == ("rt-a", HealthEventType.CONTAINER_EXITED)
    assert ended.details["exit_code"] == 4
    assert await watcher.look() == []  # the sweep that follows in time does not repeat it


async def test_between_sweeps_only_told_containers_are_looked_at_and_the_sweep_finds_the_rest() -> (
    None
):
    driver, events, notices, clock, watcher = told_watcher()
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    b = (await driver.start("rt-b", {"command": ["x"]})).container_id
    await watcher.look()
    driver.exit(a, exit_code=1)  # its notice was lost
    driver.exit(b, exit_code=2)
    notices.heard[b] = "rt-b"
    clock.advance(5)
    assert [e.runtime_id for e in await watcher.look()] == ["rt-b"]
    clock.advance(10)
    assert [e.runtime_id for e in await watcher.look()] == ["rt-a"]  # the sweep
    assert len(events.events) == 2


async def test_ends_runplane_caused_and_stray_notices_are_not_reported() -> None:
    driver, events, notices, clock, watcher = told_watcher()
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    b = (await driver.start("rt-b", {"command": ["x"]})).container_id
    await watcher.look()
    await driver.stop(a)
    notices.ours.add(a)
    notices.heard.update({a: "rt-a", b: "rt-b"})  # b still runs: a stray notice
    assert await watcher.look() == []
    clock.advance(15)
    assert await watcher.look() == []  # the sweep skips the stop's end too
    assert events.events == []


async def test_without_notices_heard_every_round_sweeps_at_the_interval() -> None:
    driver, _events, notices, _clock, watcher = told_watcher()
    notices.listening = False
    a = (await driver.start("rt-a", {"command": ["x"]})).container_id
    await watcher.look()
    driver.exit(a)
    [ended] = await watcher.look()  # no time passed: a sweep all the same
    assert ended.runtime_id == "rt-a"
