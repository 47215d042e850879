"""Starting a runtime's supervisor and hearing back from it.

The driver writes the launch dir (`meta.json`), starts the supervisor, reaps
its intermediate process, and waits for the answer file: a container id, or
the reason the command could not run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import runplane
from runplane.adapters.drivers.process_files import (
    LAUNCH_PREFIX,
    ContainerFiles,
    launch_result_path,
    read_json,
    write_json_atomic,
)
from runplane.domain.errors import DriverError

SUPERVISOR_MODULE = "runplane.adapters.drivers.supervisor"
# Import the supervisor from this very runplane, whether it is installed or run
# from a checkout. Not `python -m`: its runpy and the importlib machinery it
# pulls in cost every start about a quarter of what the supervisor costs.
# `sys.path[0]` is absolute, unlike the "" of `-c`: the supervisor changes
# directory, and later imports must not find modules in the runtime's folder.
_PACKAGE_ROOT = Path(runplane.__file__).resolve().parent.parent
_SUPERVISOR_CODE = (
    f"import sys; sys.path[0] = {str(_PACKAGE_ROOT)!r}; "
    f"from {SUPERVISOR_MODULE} import main; sys.exit(main())"
)
_LOG_TAIL_BYTES = 2000


def prepare_launch(containers: Path, runtime_id: str, spec: dict[str, Any]) -> Path:
    """A fresh launch dir holding what the supervisor needs to start `spec`."""
    containers.mkdir(mode=0o700, parents=True, exist_ok=True)
    launch_dir = containers / f"{LAUNCH_PREFIX}{secrets.token_hex(8)}"
    launch_dir.mkdir(mode=0o700)
    meta = {
        "runtime_id": runtime_id,
        "spec": spec,
        # A relative cwd means runplane's working directory, as its user reads it.
        "cwd": os.path.abspath(spec.get("cwd", os.getcwd())),
        "created_at": time.time(),
    }
    write_json_atomic(ContainerFiles(launch_dir).meta, meta)
    return launch_dir


def run_supervisor(launch_dir: Path, timeout_s: float) -> None:
    """Start the supervisor and reap its intermediate process, which exits as
    soon as the supervisor proper has forked away. Blocking: run it in a thread."""
    files = ContainerFiles(launch_dir)
    # -S: the supervisor needs the standard library only, and skipping `site`
    # (the virtualenv's .pth files) takes about a third off every start.
    command = [sys.executable, "-S", "-c", _SUPERVISOR_CODE, str(launch_dir)]
    try:
        with open(files.supervisor_log, "ab") as stderr:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Until it moves to the runtime's folder, it pins none of the user's.
                cwd=_PACKAGE_ROOT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise DriverError(f"cannot start the runtime supervisor: {exc}") from exc
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise DriverError("the runtime supervisor did not start in time") from None
    if code != 0:
        tail = log_tail(files.supervisor_log)
        raise DriverError(f"the runtime supervisor failed with exit code {code}: {tail}")


async def await_answer(launch_dir: Path, timeout_s: float, poll_interval_s: float) -> str:
    """The started container's id; DriverError with the supervisor's reason if
    the command could not run, or if no answer came within `timeout_s`."""
    answer_path = launch_result_path(launch_dir)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        answer = await asyncio.to_thread(read_json, answer_path)
        if answer is not None:
            await asyncio.to_thread(answer_path.unlink, missing_ok=True)
            if "container_id" in answer:
                return str(answer["container_id"])
            raise DriverError(str(answer.get("error", "the runtime supervisor failed")))
        await asyncio.sleep(poll_interval_s)
    tail = await asyncio.to_thread(log_tail, ContainerFiles(launch_dir).supervisor_log)
    raise DriverError(f"the runtime supervisor did not answer within {timeout_s:g}s: {tail}")


def discard_launch(launch_dir: Path) -> None:
    """Forget a failed launch. A supervisor still busy with it finds its dir
    gone and kills what it started."""
    shutil.rmtree(launch_dir, ignore_errors=True)
    launch_result_path(launch_dir).unlink(missing_ok=True)


def log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace").strip() or "(no output)"
    except OSError:
        return "(no output)"
