"""A real `runplane serve`, as root, on its defaults but for a work dir nobody
can reach: a runtime created over REST with the admin key, and its exec probe,
run as nobody in their own folder with nothing of runplane's environment and
cannot read admin.key; the data dir and everything in it are runplane's alone."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import remove_everything
from tests.support.isolation import NOBODY_UID, hostile_command, parse_report, work_root
from tests.support.output import folder_text
from tests.support.serve import RunplaneServer

# The exec probe leaves what it saw in its working directory (the runtime's).
PROBE = 'id -u > probe.out; pwd >> probe.out; env >> probe.out; cat "$1" >> probe.out 2>&1'


@pytest.fixture
def work() -> Iterator[Path]:
    assert os.geteuid() == 0, "this test proves the switch to another user: run it as root"
    with work_root() as path:
        yield path


@pytest.fixture
def server(tmp_path: Path, work: Path) -> Iterator[RunplaneServer]:
    # Embedded Redis and SQLite in the data dir: their files are checked too.
    server = RunplaneServer.launch(
        tmp_path / "data",
        runtime_user="nobody",
        work_dir=str(work),
        health_monitor_interval_s="0.1",
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def wait_for(path: Path, text: str, read: Callable[[Path], str] = Path.read_text) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and text in (content := read(path)):
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_a_rest_runtime_and_its_exec_probe_run_isolated(server: RunplaneServer, work: Path) -> None:
    key_path = server.data_dir / "admin.key"
    spec = {
        "command": hostile_command(key_path),
        "health": {
            "type": "exec",
            "command": ["/bin/sh", "-c", PROBE, "sh", str(key_path)],
            "initial_delay_s": 0,
            "period_s": 0.2,
        },
    }
    with server.client() as http:
        created = http.post("/v1/runtimes", json={"runtime_id": "hostile", "spec": spec})
    assert created.status_code == 201, created.text
    log_path = server.data_dir / "runtimes" / "containers" / created.json()["container_id"]

    report = parse_report(wait_for(log_path, "\ndone\n", folder_text))
    probe_out = wait_for(work / "hostile" / "probe.out", "denied").splitlines()

    assert report["uid"] == str(NOBODY_UID)
    assert report["cwd"] == str(work / "hostile")
    assert report["secret"] == "denied"
    assert not [name for name in report["env"] if "RUNPLANE" in name.upper()]
    assert server.admin_key not in folder_text(log_path)
    assert probe_out[:2] == [str(NOBODY_UID), str(work / "hostile")]
    assert not [line for line in probe_out if line.startswith("RUNPLANE_")]
    assert "Permission denied" in probe_out[-1]
    assert (work / "hostile" / "probe.out").stat().st_uid == NOBODY_UID


def test_the_data_dir_is_0700_and_its_files_0600(server: RunplaneServer) -> None:
    with server.client() as http:
        created = http.post("/v1/runtimes", json={"spec": {"command": ["sleep", "60"]}})
    assert created.status_code == 201, created.text
    data = server.data_dir
    modes = {
        str(path.relative_to(data)): stat.S_IMODE(path.lstat().st_mode)
        for path in data.rglob("*")
        if not path.is_symlink()
    }

    assert oct(stat.S_IMODE(data.stat().st_mode)) == "0o700"
    for name in ["admin.key", "runplane.db", "runplane.db-wal", "runplane.db-shm"]:
        assert oct(modes[name]) == "0o600", name
    assert any(name.startswith("redis/") for name in modes)
    assert {name: oct(mode) for name, mode in modes.items() if mode & 0o077} == {}
