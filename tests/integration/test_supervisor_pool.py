"""Supervisors that serve again (`supervisor_pool`): a supervisor whose
runtime ended takes the next launch instead of a fork, as good as new (its
descriptors, signals and children); one its runtime left a child to does not;
waiting ones end with the launcher and after their idle time; and only the
launcher's own children are handed launches."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_files import ContainerFiles
from runplane.adapters.drivers.supervisor_pool import IDLE_S, POOL_SOCKET, IdlePool
from runplane.domain.drivers import ContainerState
from tests.integration.test_process_driver import pid_of, wait_for_state
from tests.integration.test_process_launcher import descriptors, launchers
from tests.support.output import output_text
from tests.support.streams import HANG_SLACK

SLEEP = {"command": ["sleep", "60"]}
WAIT_S = 15.0 * HANG_SLACK


@pytest.fixture(params=["notices", "no notices"])
async def driver(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    if request.param == "notices":
        driver.exit_notices.listen(lambda: None)
    try:
        yield driver
    finally:
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()


def supervisor_of(driver: ProcessDriver, container_id: str) -> int:
    folder = driver._containers / container_id
    state = json.loads(ContainerFiles(folder).state.read_text())
    return int(state["supervisor_pid"])


def connected_sockets(pid: int) -> list[str]:
    """The Unix sockets `pid` holds that are connected (`/proc/net/unix`'s state 03)."""
    held = {f[len("socket:[") : -1] for f in descriptors(pid).values() if f.startswith("socket:")}
    with open("/proc/net/unix") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return [row[6] for row in rows if len(row) >= 7 and row[6] in held and row[5] == "03"]


async def waiting(driver: ProcessDriver, pid: int) -> None:
    """Until `pid` waits on the launcher for work: connected to its socket
    (a launch sent after that goes to it: the launcher accepts first)."""
    deadline = time.monotonic() + WAIT_S
    while not connected_sockets(pid):
        assert time.monotonic() < deadline, "the supervisor never asked for work"
        await asyncio.sleep(0.01)


async def wait_gone(pid: int) -> None:
    """Dead (gone, or a zombie): a supervisor left with a child gives up on
    it after two seconds of reaping."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        await asyncio.sleep(0.02)


async def settled_descriptors(pid: int, count: int) -> dict[int, str]:
    """`pid`'s descriptors once there are `count` (or whatever it holds at the
    deadline): a supervisor reaching a long folder's socket holds the folder
    open for a moment (`socket_address`)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        held = descriptors(pid)
        if len(held) == count or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.01)


async def supervisors_waiting(driver: ProcessDriver, count: int) -> list[int]:
    """`count` runtimes started and stopped: their supervisors, each waiting for work."""
    started = [await driver.start(f"r{i}", SLEEP) for i in range(count)]
    supervisors = [supervisor_of(driver, s.container_id) for s in started]
    for container in started:
        await driver.stop(container.container_id)
    for pid in supervisors:
        await waiting(driver, pid)
    return supervisors


async def escapee(runtime: psutil.Process) -> psutil.Process:
    """The runtime's child in a session of its own, once it is there."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [c for c in runtime.children() if c.cmdline() == ["sleep", "30"]]
        if found and os.getsid(found[0].pid) == found[0].pid:
            return found[0]
        assert time.monotonic() < deadline, "the runtime's child never escaped"
        await asyncio.sleep(0.01)


async def test_a_supervisor_whose_runtime_ended_serves_the_next_start(
    driver: ProcessDriver,
) -> None:
    first = await driver.start("a", SLEEP)
    supervisor = supervisor_of(driver, first.container_id)
    stopped = await driver.stop(first.container_id)
    assert stopped.exit_code == 143
    await waiting(driver, supervisor)
    # Waiting, it holds stdin, stdout, its log and the launcher's connection: no
    # pipe, file or socket of the runtime it saw through.
    held = await settled_descriptors(supervisor, 4)
    assert sorted(held) == [0, 1, 2, 3]
    assert held[3].startswith("socket:")

    second = await driver.start("b", {"command": ["sh", "-c", "echo again; exit 7"]})
    assert supervisor_of(driver, second.container_id) == supervisor
    info = await wait_for_state(driver, second.container_id, ContainerState.EXITED)
    assert info.exit_code == 7
    assert output_text(driver, second.container_id) == "again\n"
    # The first container's record is untouched by the second run.
    assert (await driver.inspect(first.container_id)).exit_code == 143


async def test_a_supervisor_left_with_a_child_does_not_serve_again(
    driver: ProcessDriver,
) -> None:
    # The child escapes the group into a session of its own and outlives the runtime.
    escape = {"command": ["sh", "-c", "setsid sleep 30 >/dev/null 2>&1 & exec sleep 60"]}
    first = await driver.start("a", escape)
    supervisor = supervisor_of(driver, first.container_id)
    escaped = await escapee(psutil.Process(pid_of(first.container_id)))
    await driver.stop(first.container_id)
    await wait_gone(supervisor)  # its orphan reaping gave up: it exits
    second = await driver.start("b", SLEEP)
    assert supervisor_of(driver, second.container_id) != supervisor
    escaped.kill()


async def test_waiting_supervisors_end_with_the_launcher(driver: ProcessDriver) -> None:
    supervisors = await supervisors_waiting(driver, 3)
    driver.close()  # the launcher sees end-of-file and exits
    for pid in supervisors:
        await wait_gone(pid)


async def test_a_stranger_on_the_pool_socket_is_handed_nothing(
    driver: ProcessDriver,
) -> None:
    [supervisor] = await supervisors_waiting(driver, 1)
    stranger = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stranger.settimeout(WAIT_S)
    stranger.connect(str(driver._containers / POOL_SOCKET))
    # Not the launcher's child: the connection is closed, nothing sent.
    assert stranger.recv(65536) == b""
    stranger.close()
    # The next launch goes to the launcher's own waiting supervisor.
    second = await driver.start("b", SLEEP)
    assert supervisor_of(driver, second.container_id) == supervisor
    assert (await driver.inspect(second.container_id)).state is ContainerState.RUNNING


def test_a_waiting_supervisor_is_let_go_after_its_idle_time(tmp_path: Path) -> None:
    pool = IdlePool.open(str(tmp_path))
    assert pool is not None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pool._idle.append((ours, 100.0))
    assert pool.expire(100.0 + IDLE_S / 2) == pytest.approx(IDLE_S / 2)
    assert pool.expire(100.0 + IDLE_S) is None
    theirs.settimeout(1.0)
    assert theirs.recv(16) == b""  # end-of-file: it exits
    theirs.close()
    assert not pool.hand_over(b"launch", 0)  # nobody left to hand one to
    pool.close_in_child()


async def test_a_killed_launcher_lets_its_waiting_supervisors_go(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    supervisors = await supervisors_waiting(driver, 2)
    [launcher] = launchers(tmp_path)
    launcher.send_signal(signal.SIGKILL)
    for pid in supervisors:
        await wait_gone(pid)
    # The next start brings a launcher back, which forks.
    after = await driver.start("after", SLEEP)
    assert supervisor_of(driver, after.container_id) not in supervisors
    assert (await driver.inspect(after.container_id)).state is ContainerState.RUNNING


async def test_a_waiting_supervisor_killed_costs_no_start(driver: ProcessDriver) -> None:
    supervisors = await supervisors_waiting(driver, 2)
    os.kill(supervisors[1], signal.SIGKILL)  # the one that waited least
    await wait_gone(supervisors[1])
    after = [await driver.start(f"after{i}", SLEEP) for i in range(2)]
    serving = {supervisor_of(driver, s.container_id) for s in after}
    assert supervisors[0] in serving
    assert supervisors[1] not in serving
    for container in after:
        assert (await driver.inspect(container.container_id)).state is ContainerState.RUNNING
