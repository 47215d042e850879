"""The per-runtime supervisor, as conmon or containerd-shim are for containers.

    python -m runplane.adapters.drivers.supervisor <launch dir>

Only a parent can read a child's exit status, and runplane may restart while
its runtimes run on, so each runtime gets a parent of its own. The supervisor
daemonises (runplane reaps the intermediate process at once), spawns the
command in a process group of its own (so pausing the runtime's group never
stops the supervisor), renames the launch dir to the container's id, answers
the driver through `<launch dir>.json`, waits for the child and writes
`exit.json`. Like a container, a runtime ends with its main process: whatever
is left in its process group is killed then.

Stdlib only, and no logging set-up: its stderr is `supervisor.log`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.process_files import (
    ContainerFiles,
    launch_result_path,
    make_container_id,
    read_json,
    read_proc_stat,
    write_json_atomic,
)

_PR_SET_CHILD_SUBREAPER = 36
_ORPHAN_REAP_S = 2.0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m runplane.adapters.drivers.supervisor <launch dir>", file=sys.stderr)
        return 2
    launch_dir = Path(args[0])
    # Double fork: the intermediate exits now and runplane reaps it, so the
    # supervisor is reparented away and never lingers as runplane's zombie.
    if os.fork() > 0:
        os._exit(0)
    try:
        return supervise(launch_dir)
    except BaseException as exc:
        traceback.print_exc()
        # Once the launch dir is renamed the driver has had its answer already.
        if launch_dir.exists():
            _answer(launch_dir, {"error": f"supervisor failed: {exc!r}"})
        return 1


def supervise(launch_dir: Path) -> int:
    meta = read_json(ContainerFiles(launch_dir).meta)
    if meta is None:
        _answer(launch_dir, {"error": f"no launch metadata in {launch_dir}"})
        return 1
    _become_subreaper()
    _reset_signals()
    spec: dict[str, Any] = meta["spec"]
    try:
        child = _spawn(launch_dir, spec, meta["cwd"])
    except OSError as exc:
        _answer(launch_dir, {"error": f"cannot execute {spec['command'][0]!r}: {exc}"})
        return 1
    try:
        container_dir = _register(launch_dir, child.pid, meta["runtime_id"])
    except BaseException:
        # Nobody could find, stop or wait for it: it must not run on.
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    # Nothing here pins the folder runplane may want to delete.
    os.chdir("/")
    status = _wait_for_main(child.pid)
    child.returncode = os.waitstatus_to_exitcode(status)
    _record_exit(ContainerFiles(container_dir), child.returncode)
    _reap_orphans()
    return 0


def _register(launch_dir: Path, pid: int, runtime_id: str) -> Path:
    """Write the state file, move the launch dir to the container's id, and
    answer the driver; return the container's folder."""
    stat = read_proc_stat(pid)
    own = read_proc_stat(os.getpid())
    if stat is None or own is None:
        # The child stays at worst a zombie until we wait for it.
        raise RuntimeError("cannot read the started process from /proc")
    container_id = make_container_id(pid, stat.start_ticks)
    state = {
        "container_id": container_id,
        "runtime_id": runtime_id,
        "pid": pid,
        "start_ticks": stat.start_ticks,
        "supervisor_pid": os.getpid(),
        "supervisor_start_ticks": own.start_ticks,
        "started_at": time.time(),
    }
    write_json_atomic(ContainerFiles(launch_dir).state, state)
    container_dir = launch_dir.with_name(container_id)
    os.rename(launch_dir, container_dir)
    _answer(launch_dir, {"container_id": container_id})
    return container_dir


def _spawn(launch_dir: Path, spec: dict[str, Any], cwd: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **spec["env"]}
    with open(ContainerFiles(launch_dir).log, "ab") as log:
        return subprocess.Popen(
            spec["command"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            process_group=0,
            close_fds=True,
        )


def _answer(launch_dir: Path, answer: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        write_json_atomic(launch_result_path(launch_dir), answer)


def _become_subreaper() -> None:
    """Orphans of the runtime's processes come to us rather than to init, which
    in a container may never reap them."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reset_signals() -> None:
    """Ignored signals and the signal mask survive exec: whatever runplane
    ignores or blocks (nohup's SIGHUP, say), the runtime must not inherit."""
    for sig in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _wait_for_main(pid: int) -> int:
    """Wait for `pid` to exit, reaping orphans meanwhile; return its wait status."""
    while True:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        if info is None:
            continue
        if info.si_pid != pid:
            os.waitpid(info.si_pid, 0)
            continue
        # Still a zombie, `pid` holds its process group id: no other process
        # can have taken it, so killing the group hits only the runtime's leftovers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]


def _record_exit(files: ContainerFiles, returncode: int) -> None:
    # The shell's (and Docker's) convention: killed by signal N is code 128 + N.
    killed_by = -returncode if returncode < 0 else None
    exit_record: dict[str, Any] = {
        "exit_code": 128 + killed_by if killed_by else returncode,
        "signal": killed_by,
        "finished_at": time.time(),
    }
    # The container may have been removed meanwhile: then nobody wants the record.
    with contextlib.suppress(FileNotFoundError):
        write_json_atomic(files.exit, exit_record)


def _reap_orphans() -> None:
    """Reap what the group kill left dying; give up on the rest (new sessions)."""
    deadline = time.monotonic() + _ORPHAN_REAP_S
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
