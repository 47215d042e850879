"""A remove moves a container's folder and its runtime's work dir out of the
way at once; a thread deletes them afterwards (process_trash.py, issue 15)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_trash import TRASH_DIR, Trash
from runplane.adapters.drivers.process_workdirs import LEAVE_S

WRITER = "import time; open('left.txt', 'w').write('x' * 100000); time.sleep(60)"


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()


def held(folder: Path) -> list[str]:
    return os.listdir(folder) if os.path.isdir(folder) else []


def make_folders(*paths: Path) -> None:
    for path in paths:
        os.makedirs(path)


def gone(path: Path) -> bool:
    return not os.path.lexists(path)


async def went(path: Path) -> None:
    """Until `path` is gone (an empty work dir goes a second after its remove)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if gone(path):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} is still there")


async def emptied(trash: Path) -> None:
    """Until the trash's thread has deleted what was moved there."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not held(trash):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{trash} still holds {held(trash)}")


async def test_a_removed_runtime_leaves_no_folder_and_restarts_in_an_empty_work_dir(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    started = await driver.start("r", {"command": [sys.executable, "-c", WRITER]})
    folder = driver.log_path(started.container_id).parent
    work_dir = driver.sandbox.work_dir("r")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "left.txt" in held(work_dir):
            break
        await asyncio.sleep(0.02)
    assert "left.txt" in held(work_dir)

    await driver.remove(started.container_id)

    assert gone(folder)  # gone from where anyone looks, at once
    assert gone(work_dir)
    await emptied(folder.parent / TRASH_DIR)
    await emptied(work_dir.parent / TRASH_DIR)
    again = await driver.start(
        "r", {"command": [sys.executable, "-c", "import time; time.sleep(60)"]}
    )
    assert held(driver.sandbox.work_dir("r")) == []
    await driver.remove(again.container_id)


async def test_what_a_killed_process_left_in_the_trash_goes_with_the_next_discard(
    tmp_path: Path,
) -> None:
    trash = tmp_path / TRASH_DIR
    make_folders(trash / "left-by-a-killed-serve", tmp_path / "removed")

    assert Trash().discard(tmp_path / "removed")

    assert gone(tmp_path / "removed")
    await emptied(trash)


async def test_discarding_nothing_is_no_error(tmp_path: Path) -> None:
    assert not Trash().discard(tmp_path / "never-made")
    assert gone(tmp_path / TRASH_DIR)


async def test_discards_while_a_pass_runs_are_deleted_too(tmp_path: Path) -> None:
    trash = Trash()
    for index in range(30):
        folder = tmp_path / f"f{index}"
        make_folders(folder / "inside")
        trash.discard(folder)
        if index % 7 == 0:
            await asyncio.sleep(0)  # let a pass start between discards
    await emptied(tmp_path / TRASH_DIR)


@pytest.mark.parametrize("restarted", [False, True], ids=["same driver", "after a restart"])
async def test_the_work_dir_goes_with_the_runtimes_last_container_only(
    driver: ProcessDriver, tmp_path: Path, restarted: bool
) -> None:
    sleeper = {"command": ["sleep", "60"]}
    first = await driver.start("r", sleeper)
    second = await driver.start("r", sleeper)  # as a move leaves one behind for a while
    other = await driver.start("s", sleeper)
    work_dir = driver.sandbox.work_dir("r")
    deciding = driver
    if restarted:  # a fresh driver knows no container yet: it lists them first
        deciding = ProcessDriver(tmp_path / "state")
    try:
        await deciding.remove(first.container_id)
        await asyncio.sleep(LEAVE_S + 0.2)
        assert not gone(work_dir)
        await deciding.remove(second.container_id)
        await went(work_dir)  # empty: left a second for a start, then removed
        assert not gone(driver.sandbox.work_dir("s"))
        await deciding.remove(other.container_id)
        await went(driver.sandbox.work_dir("s"))
    finally:
        if deciding is not driver:
            deciding.close()


async def test_a_start_right_after_a_remove_takes_over_the_empty_work_dir(
    driver: ProcessDriver,
) -> None:
    sleeper = {"command": ["sleep", "60"]}
    first = await driver.start("r", sleeper)
    work_dir = driver.sandbox.work_dir("r")
    inode = os.stat(work_dir).st_ino
    await driver.remove(first.container_id)  # as a start replacing it does
    again = await driver.start("r", sleeper)
    await asyncio.sleep(LEAVE_S + 0.3)  # past the time an unclaimed one goes
    assert os.stat(work_dir).st_ino == inode
    assert held(work_dir) == []
    await driver.remove(again.container_id)
    await went(work_dir)
