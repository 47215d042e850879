"""The process driver's launcher, the fork server its supervisors come from:
started on first use, restarted when it died, ended by `close`, and never
something a runtime depends on or inherits from; and the pidfd wait a stop
uses instead of polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_files import (
    META_FILE,
    STATE_FILE,
    SUPERVISOR_LOG_FILE,
    ContainerFiles,
    parse_container_id,
    read_proc_stat,
    runtime_of,
)
from runplane.adapters.drivers.process_launch import (
    INLINE_META_BYTES,
    LAUNCHER_LOG,
    SUPERVISOR_MODULE,
    Launch,
    SupervisorLauncher,
    await_answer,
)
from runplane.adapters.drivers.process_wait import process_end
from runplane.domain.drivers import ContainerState
from runplane.domain.errors import DriverError
from tests.integration.test_process_driver import wait_for_log

SLEEP = {"command": ["sleep", "60"]}
# Connects to the abstract socket its argument names once its interpreter has
# started, closes the connection, and sleeps holding what it inherited only.
REPORT_STARTED_UP = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    "import socket, sys, time\n"
    "with socket.socket(socket.AF_UNIX) as s: s.connect('\\0' + sys.argv[1])\n"
    "time.sleep(60)",
]
STARTUP_TIMEOUT_S = 30.0


def launchers(state: Path) -> list[psutil.Process]:
    """The launchers of drivers keeping their state under `state`: children
    running the supervisor module, told by the containers folder they are
    given (an earlier test's launcher may still be on its way out)."""
    within = str(state.resolve())
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            command = child.cmdline()
            if (
                child.status() != psutil.STATUS_ZOMBIE
                and any(SUPERVISOR_MODULE in part for part in command)
                and command[-1].startswith(within)
            ):
                found.append(child)
    return found


def pid_of(container_id: str) -> int:
    parsed = parse_container_id(container_id)
    assert parsed is not None
    return parsed[0]


def descriptors(pid: int) -> dict[int, str]:
    """A process's open descriptors, each with what it is: a path, `pipe:[…]`,
    `socket:[…]`. One the process closes while they are read is not open."""
    folder = f"/proc/{pid}/fd"
    held = {}
    for name in os.listdir(folder):
        try:
            held[int(name)] = os.readlink(f"{folder}/{name}")
        except FileNotFoundError:
            continue  # closed between the listing and the read
    return held


def wait_exited(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.wait(timeout=5)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()


async def test_one_launcher_serves_every_start(driver: ProcessDriver, tmp_path: Path) -> None:
    assert launchers(tmp_path) == []
    first = await driver.start("a", SLEEP)
    second = await driver.start("b", SLEEP)

    [launcher] = launchers(tmp_path)
    # Each supervisor is forked by it, in a session of its own (a signal to
    # the launcher's group or session reaches no supervisor); that they
    # outlive it is the next test's.
    supervisors = {psutil.Process(pid_of(c.container_id)).ppid() for c in (first, second)}
    assert len(supervisors) == 2
    for pid in supervisors:
        assert psutil.Process(pid).ppid() == launcher.pid
        assert os.getsid(pid) == pid != os.getsid(launcher.pid)


async def test_a_runtime_holds_no_descriptor_but_its_own_three(driver: ProcessDriver) -> None:
    # `start` returns once the command is exec'd, but a program opens files of
    # its own while it starts (`sleep` has ld.so.cache, libc and its locale
    # files on fd 3, one after another): only the program knows when that is over.
    started_up = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # end-of-file: the runtime closed its end again
        writer.close()
        started_up.set()

    # Abstract (Linux): no path-length limit, no file to clean up.
    name = f"runplane-test-{secrets.token_hex(8)}"
    async with await asyncio.start_unix_server(on_connect, f"\0{name}"):
        started = await driver.start("a", {"command": [*REPORT_STARTED_UP, name]})
        await asyncio.wait_for(started_up.wait(), STARTUP_TIMEOUT_S)

    fds = descriptors(pid_of(started.container_id))
    assert sorted(fds) == [0, 1, 2], f"the runtime holds more than its own three: {fds}"


async def test_a_killed_launcher_takes_no_runtime_with_it_and_is_started_again(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    before = await driver.start("a", SLEEP)
    [launcher] = launchers(tmp_path)
    launcher.send_signal(signal.SIGKILL)
    wait_exited(launcher)

    assert (await driver.inspect(before.container_id)).state is ContainerState.RUNNING
    after = await driver.start("b", SLEEP)
    assert (await driver.inspect(after.container_id)).state is ContainerState.RUNNING
    [again] = launchers(tmp_path)
    assert again.pid != launcher.pid


async def test_close_ends_the_launcher_and_leaves_runtimes_running(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    started = await driver.start("a", SLEEP)
    [launcher] = launchers(tmp_path)

    driver.close()

    assert not launcher.is_running()
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING
    # A start after close brings a launcher back.
    await driver.start("b", SLEEP)
    assert len(launchers(tmp_path)) == 1


async def test_process_end_waits_for_the_process_it_names() -> None:
    sleeper = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        stat = read_proc_stat(sleeper.pid)
        assert stat is not None
        assert await process_end(sleeper.pid, stat.start_ticks, 0.05) is False
        # Another process's start time: the pid was reused, the one meant is gone.
        assert await process_end(sleeper.pid, stat.start_ticks + 1, 5) is True
        asyncio.get_running_loop().call_later(0.05, sleeper.kill)
        assert await process_end(sleeper.pid, stat.start_ticks, 5) is True
    finally:
        with contextlib.suppress(ProcessLookupError):
            sleeper.kill()
        await sleeper.wait()
    assert await process_end(sleeper.pid, stat.start_ticks, 5) is True


async def test_the_program_is_searched_on_the_runtimes_own_path(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    # Found in neither runplane's PATH nor the default one: only the spec's.
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "missing-elsewhere").write_text('#!/bin/sh\necho found "$@"\nexec sleep 60\n')
    (folder / "missing-elsewhere").chmod(0o755)
    spec = {"command": ["missing-elsewhere", "it"], "env": {"PATH": f"/nonexistent:{folder}"}}

    started = await driver.start("a", spec)

    assert (await wait_for_log(driver, started.container_id, "found it")).startswith("found it")
    with pytest.raises(DriverError, match="No such file or directory: 'missing-elsewhere'"):
        await driver.start("b", {"command": ["missing-elsewhere"]})


async def test_a_program_found_but_not_executable_is_told_before_one_not_found(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    # As execvp: a candidate on PATH that cannot run is the error told, even
    # when a later folder holds nothing of that name.
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "not-runnable").write_text("#!/bin/sh\n")
    (folder / "not-runnable").chmod(0o644)
    spec = {"command": ["not-runnable"], "env": {"PATH": f"{folder}:/nonexistent"}}

    with pytest.raises(DriverError, match="Permission denied: 'not-runnable'"):
        await driver.start("a", spec)
    assert await driver.list_containers() == []


async def test_a_start_given_up_on_leaves_nothing_running(tmp_path: Path) -> None:
    driver = ProcessDriver(tmp_path / "state", start_timeout_s=0.5)
    try:
        await driver.start("warm", SLEEP)  # the launcher is up
        [launcher] = launchers(tmp_path)
        launcher.suspend()  # the next launch waits in its socket
        try:
            with pytest.raises(DriverError, match="did not answer within"):
                await driver.start("late", SLEEP)
        finally:
            launcher.resume()
        # The launcher now forks for a launch that is gone: that supervisor
        # must start nothing, and the launcher must serve the next start.
        after = await driver.start("after", SLEEP)
        running = {info.runtime_id for info in await driver.list_containers()}
        assert running == {"warm", "after"}
        assert (await driver.inspect(after.container_id)).state is ContainerState.RUNNING
        # What the launcher forked: two supervisors, each with its runtime,
        # once the one for the launch given up on has ended.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        supervisors = launcher.children()
        while len(supervisors) != 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            supervisors = launcher.children()
        assert len(supervisors) == 2
        assert [len(s.children()) for s in supervisors] == [1, 1]
    finally:
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()


async def test_a_start_that_goes_well_makes_one_file_holding_meta_and_state(
    driver: ProcessDriver,
) -> None:
    # The meta travelled in the launch request: the supervisor wrote it into
    # the state file; no meta file, no supervisor log.
    started = await driver.start("quiet", SLEEP)
    folder = driver.log_path(started.container_id).parent
    assert os.listdir(folder) == [STATE_FILE]
    state = json.loads((folder / STATE_FILE).read_text())
    assert (state["runtime_id"], state["spec"]["command"]) == ("quiet", ["sleep", "60"])
    assert state["container_id"] == started.container_id
    assert (state["pid"], state["start_ticks"]) == parse_container_id(started.container_id)
    assert runtime_of(ContainerFiles(folder)) == "quiet"


async def test_a_container_with_a_meta_file_of_its_own_is_read_as_before(
    driver: ProcessDriver,
) -> None:
    # As runplane wrote a container's files before the meta moved into the
    # state file: the meta in meta.json, the state file without it.
    started = await driver.start("old", SLEEP)
    folder = driver.log_path(started.container_id).parent
    state = json.loads((folder / STATE_FILE).read_text())
    meta_keys = ("spec", "cwd", "env", "credentials", "created_at", "logs")
    (folder / META_FILE).write_text(
        json.dumps({key: state.pop(key) for key in meta_keys} | {"runtime_id": "old"})
    )
    (folder / STATE_FILE).write_text(json.dumps(state))
    fresh = ProcessDriver(driver.log_path(started.container_id).parents[2])
    try:
        [listed] = await fresh.list_containers()
        assert (listed.runtime_id, listed.state) == ("old", ContainerState.RUNNING)
        stopped = await fresh.stop(started.container_id, timeout_s=5)
        assert stopped.state is ContainerState.EXITED
    finally:
        fresh.close()


async def test_a_meta_too_large_to_travel_is_written_by_the_driver(driver: ProcessDriver) -> None:
    big = "x" * (INLINE_META_BYTES + 1)
    spec = {"command": ["sh", "-c", 'echo "size ${#BIG}"; sleep 60'], "env": {"BIG": big}}
    started = await driver.start("big", spec)
    await wait_for_log(driver, started.container_id, f"size {len(big)}")
    folder = driver.log_path(started.container_id).parent
    assert json.loads((folder / META_FILE).read_text())["env"]["BIG"] == big


async def test_a_supervisor_that_fails_tells_why_in_its_launch_dir_and_the_launchers_log(
    tmp_path: Path,
) -> None:
    containers = tmp_path / "containers"
    launcher = SupervisorLauncher(containers)
    try:
        launch_dir = containers / ".launch-broken"
        launch_dir.mkdir(parents=True)
        # A meta with no spec: the supervisor fails before it starts anything.
        meta = json.dumps({"runtime_id": "r"}).encode()
        notify = launcher.launch(Launch(launch_dir, os.fsencode(launch_dir) + b"\0" + meta))
        with pytest.raises(DriverError, match="supervisor failed: KeyError"):
            await await_answer(launch_dir, notify, STARTUP_TIMEOUT_S)
        assert "KeyError: 'spec'" in (launch_dir / SUPERVISOR_LOG_FILE).read_text()
        launcher_log = (containers / LAUNCHER_LOG).read_text()
        assert f"for {launch_dir} failed" in launcher_log
        assert "KeyError: 'spec'" in launcher_log
    finally:
        launcher.close()
