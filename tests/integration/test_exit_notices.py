"""Exit notices with real processes: a runtime's supervisor tells the driver
when it ended, and the exit watcher reports it without a sweep; a notice that
is lost (nobody listening, the socket removed, the folder removed) is made up
for by the next sweep; an end runplane caused itself is not reported."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_exits import EXITS_SOCKET
from runplane.adapters.system import SystemClock
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.testing.health import InMemoryHealthEvents
from runplane.workers.exit_watch import ExitWatcher
from tests.integration.test_process_driver import SLEEPER, pid_of, python, wait_gone
from tests.support.streams import HANG_SLACK

E = HealthEventType


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        for info in await ProcessDriver(tmp_path / "state").list_containers():
            await driver.remove(info.container_id)
        driver.close()


async def wait_until(check: Callable[[], object], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s * HANG_SLACK
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout_s} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def watching(
    driver: ProcessDriver, events: InMemoryHealthEvents, sweep_s: float
) -> AsyncIterator[ExitWatcher]:
    """An exit watcher told by the driver's notices, past its first sweep."""
    watcher = ExitWatcher(
        driver, events, SystemClock(), notices=driver.exit_notices, sweep_s=sweep_s
    )
    task = asyncio.create_task(watcher.run())
    try:
        await wait_until(lambda: watcher.sweeps >= 1)
        yield watcher
    finally:
        watcher.request_stop()
        await task


def ends(events: InMemoryHealthEvents) -> list[HealthEvent]:
    return list(events.events)


@pytest.mark.parametrize("deep", [False, True], ids=["short-path", "path-past-sun-path"])
async def test_an_end_is_told_and_reported_without_a_sweep(tmp_path: Path, deep: bool) -> None:
    # Past 108 bytes a socket path cannot be bound as it is: the driver and
    # the supervisors reach it through /proc/self/fd.
    state = tmp_path / ("d" * 120 if deep else "s") / "state"
    driver = ProcessDriver(state)
    events = InMemoryHealthEvents()
    try:
        async with watching(driver, events, sweep_s=3600) as watcher:
            assert driver.exit_notices.listening
            started = await driver.start("told", python(SLEEPER))  # after the sweep
            os.kill(pid_of(started.container_id), signal.SIGKILL)
            await wait_until(lambda: ends(events))
            assert watcher.sweeps == 1  # no sweep saw it: the notice did
        [ended] = ends(events)
        assert (ended.runtime_id, ended.container_id) == ("told", started.container_id)
        assert ended.event_type is E.CONTAINER_EXITED
        assert ended.details["signal"] == signal.SIGKILL
    finally:
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()


async def test_an_end_whose_notice_was_lost_is_found_by_the_sweep(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    events = InMemoryHealthEvents()
    started = await driver.start("lost", python(SLEEPER))
    async with watching(driver, events, sweep_s=0.5) as watcher:
        # The socket removed behind runplane's back: the supervisor cannot tell.
        os.unlink(tmp_path / "state" / "containers" / EXITS_SOCKET)
        os.kill(pid_of(started.container_id), signal.SIGKILL)
        await wait_until(lambda: ends(events))
        assert watcher.sweeps > 1
    [ended] = ends(events)
    assert (ended.runtime_id, ended.event_type) == ("lost", E.CONTAINER_EXITED)
    assert ended.details["signal"] == signal.SIGKILL


async def test_a_folder_removed_behind_the_drivers_back_is_found_disappeared(
    driver: ProcessDriver,
) -> None:
    events = InMemoryHealthEvents()
    started = await driver.start("gone", python(SLEEPER))
    async with watching(driver, events, sweep_s=0.5):
        shutil.rmtree(driver.log_path(started.container_id).parent)
        os.killpg(pid_of(started.container_id), signal.SIGKILL)
        await wait_gone(pid_of(started.container_id))
        await wait_until(lambda: ends(events))
    [ended] = ends(events)
    assert (ended.runtime_id, ended.event_type) == ("gone", E.CONTAINER_DISAPPEARED)


async def test_ends_runplane_caused_are_not_reported(driver: ProcessDriver) -> None:
    events = InMemoryHealthEvents()
    stopped = await driver.start("stopped", python(SLEEPER))
    removed = await driver.start("removed", python(SLEEPER))
    killed = await driver.start("killed", python(SLEEPER))
    async with watching(driver, events, sweep_s=0.3) as watcher:
        await driver.stop(stopped.container_id, timeout_s=5)
        await driver.remove(removed.container_id)
        os.kill(pid_of(killed.container_id), signal.SIGKILL)
        await wait_until(lambda: ends(events))
        sweeps = watcher.sweeps
        await wait_until(lambda: watcher.sweeps >= sweeps + 2)  # two sweeps after it too
    assert [(e.runtime_id, e.event_type) for e in ends(events)] == [("killed", E.CONTAINER_EXITED)]
