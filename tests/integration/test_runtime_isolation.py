"""Process runtimes and exec probes run isolated, for real, as root: as the
runtime user (nobody) with no supplementary groups, a clean environment, in a
working directory of their own, unable to read runplane's data dir; and
runplane still signals, stops and re-adopts them across the uid change."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_user import RuntimeSandbox
from runplane.adapters.probes import NetworkProber
from runplane.domain.drivers import ContainerState
from runplane.domain.errors import DriverError
from runplane.domain.health.probes import ProbeTarget
from runplane.domain.health.spec import HealthCheck, ProbeType
from tests.support.isolation import (
    NOBODY_GID,
    NOBODY_UID,
    RUNTIME_USER,
    hostile_command,
    parse_report,
    work_root,
)
from tests.support.output import output_text

SECRET = "admin-key-that-must-not-leak"


@pytest.fixture
def work() -> Iterator[Path]:
    assert os.geteuid() == 0, "these tests prove the switch to another user: run them as root"
    with work_root() as path:
        yield path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "admin.key").write_text(SECRET)
    os.chmod(data / "admin.key", 0o600)
    # runplane's own environment, which no runtime may see.
    monkeypatch.setenv("RUNPLANE_DATABASE_URL", "postgresql://runplane:hunter2@db/runplane")
    return data


@pytest.fixture
def sandbox(work: Path) -> RuntimeSandbox:
    return RuntimeSandbox.of(RUNTIME_USER, work)


@pytest.fixture
async def driver(data_dir: Path, sandbox: RuntimeSandbox) -> AsyncIterator[ProcessDriver]:
    driver = ProcessDriver(data_dir / "runtimes", sandbox=sandbox)
    yield driver
    for info in await ProcessDriver(data_dir / "runtimes", sandbox=sandbox).list_containers():
        await driver.remove(info.container_id)
    driver.close()


async def read_report(driver: ProcessDriver, container_id: str) -> dict[str, str | list[str]]:
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = output_text(driver, container_id)
        if "done" in log.splitlines():
            return parse_report(log)
        await asyncio.sleep(0.02)
    raise AssertionError(f"the runtime never reported: {log!r}")


async def test_a_runtime_runs_as_nobody_clean_in_its_own_dir_and_cannot_read_the_data_dir(
    driver: ProcessDriver, data_dir: Path, work: Path
) -> None:
    started = await driver.start("hostile", {"command": hostile_command(data_dir / "admin.key")})

    report = await read_report(driver, started.container_id)
    log = output_text(driver, started.container_id)

    assert report["uid"] == str(NOBODY_UID)
    # Supplementary groups dropped: only nobody's primary group is left.
    assert report["groups"] == str(NOBODY_GID)
    assert report["cwd"] == str(work / "hostile")
    assert sorted(report["env"]) == ["HOME", "LANG", "LOGNAME", "PATH", "PWD", "USER"]
    assert report["secret"] == "denied"
    assert SECRET not in log
    assert "hunter2" not in log
    folder = os.stat(work / "hostile")
    assert (folder.st_uid, oct(folder.st_mode & 0o777)) == (NOBODY_UID, "0o700")
    assert oct(os.stat(work).st_mode & 0o777) == "0o711"


async def test_the_spec_env_and_a_relative_cwd_inside_the_work_dir_are_used(
    driver: ProcessDriver, data_dir: Path, work: Path
) -> None:
    spec = {
        "command": hostile_command(data_dir / "admin.key"),
        "cwd": "app/data",
        "env": {"A": "1"},
    }
    started = await driver.start("rel", spec)

    report = await read_report(driver, started.container_id)

    assert report["cwd"] == str(work / "rel" / "app" / "data")
    assert "A" in report["env"]
    # Created at start, as the runtime user's.
    assert os.stat(work / "rel" / "app").st_uid == NOBODY_UID
    assert os.stat(work / "rel" / "app" / "data").st_uid == NOBODY_UID


async def test_a_symlink_out_of_the_work_dir_is_refused_as_cwd(
    driver: ProcessDriver, data_dir: Path, sandbox: RuntimeSandbox
) -> None:
    (sandbox.prepare("sly") / "out").symlink_to(data_dir)

    with pytest.raises(DriverError, match="leads out of the runtime's working directory"):
        await driver.start("sly", {"command": ["/bin/true"], "cwd": "out"})


async def test_runplane_signals_stops_and_readopts_a_runtime_of_another_user(
    driver: ProcessDriver, data_dir: Path, sandbox: RuntimeSandbox, work: Path
) -> None:
    started = await driver.start("held", {"command": hostile_command(data_dir / "admin.key")})
    await read_report(driver, started.container_id)

    await driver.pause(started.container_id)
    assert (await driver.inspect(started.container_id)).state is ContainerState.PAUSED
    await driver.resume(started.container_id)
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING

    # A fresh driver, as after a runplane restart, finds it and stops it.
    fresh = ProcessDriver(data_dir / "runtimes", sandbox=sandbox)
    try:
        listed = {info.container_id: info for info in await fresh.list_containers()}
        assert listed[started.container_id].runtime_id == "held"
        stopped = await fresh.stop(started.container_id, timeout_s=5)
        await fresh.remove(started.container_id)
    finally:
        fresh.close()
    assert stopped.state is ContainerState.EXITED
    assert stopped.exit_code == 128 + 15  # sleep ended by SIGTERM, not killed
    assert not (work / "held").exists()  # the work dir went with its last container


def probe_command(secret: Path, expected_cwd: Path) -> HealthCheck:
    script = (
        f'test "$(id -u)" = {NOBODY_UID} && test "$(pwd)" = "{expected_cwd}" '
        f'&& ! env | grep -q -e ^RUNPLANE_ -e hunter2 && test "$APP" = 1 && ! cat "{secret}"'
    )
    return HealthCheck(ProbeType.EXEC, command=("/bin/sh", "-c", script), timeout_s=10)


async def test_an_exec_probe_runs_as_nobody_clean_in_the_runtimes_dir(
    data_dir: Path, sandbox: RuntimeSandbox, work: Path
) -> None:
    check = probe_command(data_dir / "admin.key", work / "probed")
    target = ProbeTarget(env={"APP": "1"}, runtime_id="probed")
    isolated, unisolated = NetworkProber(sandbox), NetworkProber(RuntimeSandbox.of("", work))
    try:
        result = await isolated.probe(check, target)
        # The same probe as runplane's own user (root) fails its checks: the
        # check above tells the two apart.
        as_root = await unisolated.probe(check, target)
    finally:
        await isolated.aclose()
        await unisolated.aclose()

    assert (result.ok, result.detail) == (True, "exit code 0")
    assert (as_root.ok, as_root.detail) == (False, "exit code 1")
