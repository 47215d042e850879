"""The process driver against real processes: supervisors, process groups,
signals, exit records and re-adoption by a fresh driver."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_files import parse_container_id
from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import ContainerGone, InvalidSpec, SpecRefused
from tests.support.output import output_text
from tests.support.ports import free_port

SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)
# The child starts a grandchild in its process group and names it.
WITH_GRANDCHILD = (
    "import subprocess, time; g = subprocess.Popen(['sleep', '60']); "
    "print('grandchild', g.pid, flush=True); time.sleep(60)"
)


def python(code: str, **spec: Any) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", code], **spec}


def pid_of(container_id: str) -> int:
    parsed = parse_container_id(container_id)
    assert parsed is not None
    return parsed[0]


async def wait_for_log(driver: ProcessDriver, container_id: str, text: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = output_text(driver, container_id)
        if text in log:
            return log
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in the log: {log!r}")


async def wait_for_state(
    driver: ProcessDriver, container_id: str, state: ContainerState
) -> ContainerInfo:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        info = await driver.inspect(container_id)
        if info.state is state:
            return info
        await asyncio.sleep(0.02)
    raise AssertionError(f"{container_id} never reached {state}: {info}")


async def wait_gone(pid: int) -> None:
    """Dead: no such process, or a zombie nobody has reaped yet."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} is still alive")


async def wait_status(process: psutil.Process, *, stopped: bool) -> None:
    """Signals to a group land in each member on its own schedule."""
    deadline = time.monotonic() + 5
    while (process.status() == psutil.STATUS_STOPPED) != stopped:
        assert time.monotonic() < deadline, f"{process.pid} is still {process.status()}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(tmp_path / "state")
    try:
        yield driver
    finally:
        # Every process a test started dies with its container.
        for info in await ProcessDriver(tmp_path / "state").list_containers():
            await driver.remove(info.container_id)
        driver.close()


async def test_start_serves_on_its_endpoint_and_inspects_running(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    started = await driver.start("web", {"command": command, "cwd": str(tmp_path), "port": port})

    assert started.engine_endpoint == f"127.0.0.1:{port}"
    assert parse_container_id(started.container_id) is not None
    deadline = time.monotonic() + 5
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            assert time.monotonic() < deadline, "the server never listened"
            await asyncio.sleep(0.05)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.0 200")
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING


async def test_pause_stops_the_process_and_resume_continues_it(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))
    cid = started.container_id

    await driver.pause(cid)
    assert (await driver.inspect(cid)).state is ContainerState.PAUSED
    assert psutil.Process(pid_of(cid)).status() == psutil.STATUS_STOPPED

    await driver.resume(cid)
    assert (await driver.inspect(cid)).state is ContainerState.RUNNING
    assert psutil.Process(pid_of(cid)).status() != psutil.STATUS_STOPPED


async def test_stop_sends_sigterm_and_returns_the_exit(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))

    info = await driver.stop(started.container_id)

    assert info.state is ContainerState.EXITED
    assert (info.signal, info.exit_code) == (signal.SIGTERM, 128 + signal.SIGTERM)
    assert await driver.inspect(started.container_id) == info
    with pytest.raises(ContainerGone):
        await driver.stop(started.container_id)


async def test_the_stop_log_line_names_the_runtime(
    driver: ProcessDriver, caplog: pytest.LogCaptureFixture
) -> None:
    started = await driver.start("rt-logged", python(SLEEPER))
    caplog.set_level(logging.INFO, logger="runplane.adapters.drivers.process")

    await driver.stop(started.container_id)

    [line] = [r for r in caplog.records if r.getMessage() == "stopping process runtime"]
    assert (line.runtime_id, line.container_id) == ("rt-logged", started.container_id)


async def test_stop_of_a_paused_runtime_ends_it(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))
    await driver.pause(started.container_id)

    info = await driver.stop(started.container_id, timeout_s=2)

    assert (info.state, info.signal) == (ContainerState.EXITED, signal.SIGTERM)


async def test_stop_of_a_process_killed_by_hand_is_container_gone(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))
    os.kill(pid_of(started.container_id), signal.SIGKILL)

    info = await wait_for_state(driver, started.container_id, ContainerState.EXITED)

    assert info.signal == signal.SIGKILL
    with pytest.raises(ContainerGone):
        await driver.stop(started.container_id)
    with pytest.raises(ContainerGone):
        await driver.pause(started.container_id)
    with pytest.raises(ContainerGone):
        await driver.resume(started.container_id)


async def test_stop_signal_from_the_spec_is_sent(driver: ProcessDriver) -> None:
    # os.write, not print: "ready" is in the log once its write returned, and
    # the stop may land while a print would still hold stdout's buffer (the
    # handler's own print then fails as a reentrant call).
    code = (
        "import os, signal, sys, time\n"
        "def bye(*_):\n    os.write(1, b'got usr1\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGUSR1, bye); os.write(1, b'ready\\n'); time.sleep(60)"
    )
    started = await driver.start("r", python(code, stop_signal="SIGUSR1"))
    await wait_for_log(driver, started.container_id, "ready")

    info = await driver.stop(started.container_id)

    assert (info.exit_code, info.signal) == (0, None)
    assert "got usr1" in output_text(driver, started.container_id)


async def test_signals_runplane_ignores_are_not_ignored_by_the_runtime(
    driver: ProcessDriver,
) -> None:
    # As under nohup: an ignored signal would survive exec into the runtime.
    previous = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        started = await driver.start("r", python(SLEEPER, stop_signal="SIGUSR2"))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    await wait_for_log(driver, started.container_id, "ready")

    info = await driver.stop(started.container_id, timeout_s=2)

    assert info.signal == signal.SIGUSR2


async def test_stop_kills_what_ignores_its_stop_signal_after_the_timeout(
    driver: ProcessDriver,
) -> None:
    started = await driver.start("r", python(IGNORES_SIGTERM, stop_timeout_s=0.3))
    await wait_for_log(driver, started.container_id, "ready")

    began = time.monotonic()
    info = await driver.stop(started.container_id)

    assert 0.3 <= time.monotonic() - began < 10  # killed, not waited for
    assert (info.signal, info.exit_code) == (signal.SIGKILL, 128 + signal.SIGKILL)


async def test_stop_timeout_argument_overrides_the_spec(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(IGNORES_SIGTERM, stop_timeout_s=60))
    await wait_for_log(driver, started.container_id, "ready")

    began = time.monotonic()
    info = await driver.stop(started.container_id, timeout_s=0.1)

    assert time.monotonic() - began < 30  # the argument's 0.1 s, not the spec's 60 s
    assert info.signal == signal.SIGKILL


async def test_exit_code_of_a_process_that_ends_by_itself_is_recorded(
    driver: ProcessDriver,
) -> None:
    started = await driver.start("r", python("import sys; sys.exit(3)"))

    info = await wait_for_state(driver, started.container_id, ContainerState.EXITED)

    assert (info.exit_code, info.signal) == (3, None)
    assert [i.state for i in await driver.list_containers()] == [ContainerState.EXITED]
    with pytest.raises(ContainerGone):
        await driver.stop(started.container_id)


async def test_log_holds_stdout_and_stderr(driver: ProcessDriver) -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    started = await driver.start("r", python(code))
    await wait_for_state(driver, started.container_id, ContainerState.EXITED)

    log = output_text(driver, started.container_id)

    assert "to stdout" in log
    assert "to stderr" in log
    assert driver.log_path(started.container_id).parent.name == started.container_id


async def test_the_env_is_clean_plus_the_specs_and_cwd_is_used(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    code = "import os; print(os.environ['RP_X'], sorted(os.environ), os.getcwd(), flush=True)"
    started = await driver.start("r", python(code, env={"RP_X": "hello"}, cwd=str(tmp_path)))

    log = await wait_for_log(driver, started.container_id, "hello")

    names = ["HOME", "LANG", "LOGNAME", "PATH", "RP_X", "USER"]
    assert log.split("\n")[0] == f"hello {names} {tmp_path}"


async def test_a_missing_program_is_refused_as_the_specs_fault(driver: ProcessDriver) -> None:
    # SpecRefused: the operation answers invalid_request (400), not 503.
    with pytest.raises(SpecRefused, match="No such file"):
        await driver.start("r", {"command": ["/nonexistent/program"]})
    assert await driver.list_containers() == []


async def test_a_program_without_execute_permission_is_refused(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    # root may execute nothing without an execute bit either.
    with pytest.raises(SpecRefused, match="Permission denied"):
        await driver.start("r", {"command": [str(script)]})


async def test_a_missing_cwd_is_refused(driver: ProcessDriver, tmp_path: Path) -> None:
    with pytest.raises(SpecRefused, match="No such file"):
        await driver.start("r", python(SLEEPER, cwd=str(tmp_path / "absent")))


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"command": []},
        {"command": "sleep 1"},
        {"command": ["sleep", 1]},
        {"command": ["sleep", "1"], "image": "x"},
        {"command": ["sleep", "1"], "env": {"A": 1}},
        {"command": ["sleep", "1"], "stop_signal": "SIGNOPE"},
        {"command": ["sleep", "1"], "stop_timeout_s": -1},
        {"command": ["sleep", "1"], "port": 70000},
        {"command": ["sleep", "1"], "health": "http"},
    ],
)
async def test_an_invalid_spec_is_refused_before_anything_runs(
    driver: ProcessDriver, spec: dict[str, Any]
) -> None:
    with pytest.raises(InvalidSpec):
        await driver.start("r", spec)
    assert await driver.list_containers() == []


async def test_a_fresh_driver_on_the_same_state_dir_adopts_the_runtime(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    started = await driver.start("r", python(SLEEPER))

    # A runplane restart: a new driver, nothing in memory, the same files.
    fresh = ProcessDriver(tmp_path / "state")

    assert (await fresh.inspect(started.container_id)).state is ContainerState.RUNNING
    assert [i.container_id for i in await fresh.list_containers()] == [started.container_id]
    await fresh.pause(started.container_id)
    assert (await driver.inspect(started.container_id)).state is ContainerState.PAUSED
    info = await fresh.stop(started.container_id)
    assert (info.state, info.signal) == (ContainerState.EXITED, signal.SIGTERM)


async def test_signals_reach_the_whole_process_group(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(WITH_GRANDCHILD))
    log = await wait_for_log(driver, started.container_id, "grandchild")
    grandchild = psutil.Process(int(log.split()[1]))

    await driver.pause(started.container_id)
    await wait_status(grandchild, stopped=True)
    await driver.resume(started.container_id)
    await wait_status(grandchild, stopped=False)
    await driver.stop(started.container_id)
    await wait_gone(grandchild.pid)


async def test_leftovers_in_the_group_die_with_the_main_process(driver: ProcessDriver) -> None:
    code = (
        "import subprocess; g = subprocess.Popen(['sleep', '60']); "
        "print('grandchild', g.pid, flush=True)"
    )
    started = await driver.start("r", python(code))
    log = await wait_for_log(driver, started.container_id, "grandchild")

    info = await wait_for_state(driver, started.container_id, ContainerState.EXITED)

    assert info.exit_code == 0
    await wait_gone(int(log.split()[1]))


async def test_remove_kills_and_forgets_the_container(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))
    folder = driver.log_path(started.container_id).parent

    await driver.remove(started.container_id)

    await wait_gone(pid_of(started.container_id))
    assert not folder.exists()
    assert (await driver.inspect(started.container_id)).state is ContainerState.MISSING
    await driver.remove(started.container_id)
    await driver.remove("not-a-process-id")


async def test_unknown_and_malformed_ids_are_missing(driver: ProcessDriver) -> None:
    for container_id in ("p-1-1", "../../etc", "m-1"):
        assert (await driver.inspect(container_id)).state is ContainerState.MISSING
        with pytest.raises(ContainerGone):
            await driver.stop(container_id)


async def test_a_reused_pid_is_not_taken_for_the_runtime(
    driver: ProcessDriver, tmp_path: Path
) -> None:
    # A container whose pid now belongs to another process (this test's own),
    # started at another time, and whose supervisor is long gone.
    container_id = f"p-{os.getpid()}-1"
    folder = tmp_path / "state" / "containers" / container_id
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"runtime_id": "r", "spec": {}}))
    state = {"pid": os.getpid(), "start_ticks": 1, "supervisor_pid": 1}
    (folder / "state.json").write_text(json.dumps(state | {"supervisor_start_ticks": 1}))

    assert (await driver.inspect(container_id)).state is ContainerState.MISSING
    with pytest.raises(ContainerGone):
        await driver.stop(container_id)
    with pytest.raises(ContainerGone):
        await driver.pause(container_id)


async def test_a_runtime_whose_supervisor_was_killed_is_missing_once_it_ends(
    driver: ProcessDriver,
) -> None:
    started = await driver.start("r", python(SLEEPER))
    # Its output goes through the supervisor: a write after its death fails
    # (EPIPE), so the kill waits until the runtime has said all it says.
    await wait_for_log(driver, started.container_id, "ready")
    state = json.loads((driver.log_path(started.container_id).parent / "state.json").read_text())
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    await wait_gone(state["supervisor_pid"])
    # Orphaned but alive: still running, still stoppable.
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING

    info = await driver.stop(started.container_id)

    assert info.state is ContainerState.EXITED
    assert "unknown" in info.detail
    assert (await driver.inspect(started.container_id)).state is ContainerState.MISSING


async def test_runplane_keeps_no_zombies(driver: ProcessDriver) -> None:
    started = await driver.start("r", python(SLEEPER))
    await driver.stop(started.container_id)

    zombies = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.status() == psutil.STATUS_ZOMBIE
    ]
    assert zombies == []
