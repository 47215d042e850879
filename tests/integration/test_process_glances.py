"""The process driver's quick look at a runtime it has seen running (no file
read, no thread) never hides a change: an end, a pause, a folder gone."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.domain.drivers import ContainerState
from tests.integration.test_process_driver import SLEEPER, pid_of, python, wait_for_state, wait_gone


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        for info in await ProcessDriver(tmp_path / "state").list_containers():
            await driver.remove(info.container_id)
        driver.close()


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
