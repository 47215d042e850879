"""The process driver's quick look at a runtime it has seen running (no file
read, no thread) never hides a change: an end, a pause, a folder gone; nor
does its inline read of an end just waited for."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runplane.adapters.drivers import process_looks
from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_observe import Observation
from runplane.domain.drivers import ContainerState
from tests.integration.test_process_driver import (
    SLEEPER,
    pid_of,
    python,
    wait_for_log,
    wait_for_state,
    wait_gone,
)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        for info in await ProcessDriver(tmp_path / "state").list_containers():
            await driver.remove(info.container_id)
        driver.close()


TELLS_SIGTERM = (
    "import signal, time; "
    "signal.signal(signal.SIGTERM, lambda *_: print('term', flush=True)); "
    "print('ready', flush=True); time.sleep(60)"
)


async def seen_running(driver: ProcessDriver) -> str:
    started = await driver.start("r", python(SLEEPER))
    for _ in range(2):  # the first look remembers it, the second is the quick one
        assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING
    return started.container_id


async def test_a_process_killed_by_hand_is_seen_ended_with_its_signal(
    driver: ProcessDriver,
) -> None:
    container_id = await seen_running(driver)

    os.kill(pid_of(container_id), signal.SIGKILL)

    info = await wait_for_state(driver, container_id, ContainerState.EXITED)
    assert info.signal == signal.SIGKILL
    assert "SIGKILL" in info.detail


async def test_a_pause_and_a_resume_by_hand_are_seen(driver: ProcessDriver) -> None:
    container_id = await seen_running(driver)

    os.killpg(pid_of(container_id), signal.SIGSTOP)
    await wait_for_state(driver, container_id, ContainerState.PAUSED)
    os.killpg(pid_of(container_id), signal.SIGCONT)

    await wait_for_state(driver, container_id, ContainerState.RUNNING)


async def test_a_folder_removed_behind_the_drivers_back_is_missing(
    driver: ProcessDriver,
) -> None:
    container_id = await seen_running(driver)
    folder = driver.log_path(container_id).parent

    shutil.rmtree(folder)

    assert (await driver.inspect(container_id)).state is ContainerState.MISSING
    os.killpg(pid_of(container_id), signal.SIGKILL)
    await wait_gone(pid_of(container_id))


async def test_a_removed_container_is_missing_and_forgotten(driver: ProcessDriver) -> None:
    container_id = await seen_running(driver)

    await driver.remove(container_id)

    assert (await driver.inspect(container_id)).state is ContainerState.MISSING


async def test_a_stop_reads_the_recorded_end_without_a_full_look(
    driver: ProcessDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The supervisor's answer names the supervisor: the stop of a runtime just
    # started knows whom to wait for while its end is recorded, and reads the
    # exit file inline (no look at every file in a thread).
    started = await driver.start("r", python(SLEEPER))
    looks: list[str] = []
    full_look = process_looks.observe

    def counted(containers: Path, container_id: str) -> Observation:
        looks.append(container_id)
        return full_look(containers, container_id)

    monkeypatch.setattr(process_looks, "observe", counted)

    info = await driver.stop(started.container_id)

    assert (info.state, info.signal) == (ContainerState.EXITED, signal.SIGTERM)
    assert looks == []


async def test_a_folder_removed_during_a_stop_is_an_end_of_unknown_status(
    driver: ProcessDriver,
) -> None:
    started = await driver.start("r", python(TELLS_SIGTERM))
    await wait_for_log(driver, started.container_id, "ready")
    folder = driver.log_path(started.container_id).parent
    stopping = asyncio.create_task(driver.stop(started.container_id, timeout_s=30))
    await wait_for_log(driver, started.container_id, "term")  # the stop waits for its end

    shutil.rmtree(folder)
    os.killpg(pid_of(started.container_id), signal.SIGKILL)

    info = await stopping
    assert info.state is ContainerState.EXITED
    assert "unknown" in (info.detail or "")
