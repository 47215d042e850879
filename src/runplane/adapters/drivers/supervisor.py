"""The per-runtime supervisor, as conmon or containerd-shim are for containers,
and the launcher that starts it.

    python -m runplane.adapters.drivers.supervisor <socket fd> [<containers dir>]

Only a parent can read a child's exit status, and runplane may restart while
its runtimes run on, so each runtime gets a parent of its own. The driver
keeps one launcher process (`supervisor_launcher`) and sends it each launch
dir over a socket; the launcher forks a supervisor (or hands the launch to
one whose runtime has ended, `supervisor_pool`), which runs in a session of
its own and outlives the launcher and runplane alike (the kernel reaps it: the
launcher ignores SIGCHLD, so it never waits). The supervisor spawns the
command in a process group of its own (so pausing the runtime's group never
stops the supervisor), renames the launch dir to the container's id, answers
the driver on the pipe the driver waits on (one JSON object, then
end-of-file), waits for the child, writes `exit.json` and tells the driver
(`supervisor_exits`). Like a container, a runtime ends with its main process:
whatever is left in its process group is killed then. The supervisor stays
runplane's user (it writes the container's files); the command runs as the
user, in the directory and with the environment the launch's meta names (see
`process_user`).

Stdlib only, and no logging set-up: a supervisor's stderr is the launcher's
`.launcher.log`, and one that fails before its answer writes why into the
launch dir's `supervisor.log` too. The launcher imports what the supervisors
need once, and little else (see `supervisor_files`); each supervisor is a
fork, not a new interpreter, and what can be worked out once (the signals to
reset, libc's prctl) is worked out in the launcher.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING

from runplane.adapters.drivers.supervisor_exits import tell_exit
from runplane.adapters.drivers.supervisor_files import (
    EXIT_FILE,
    STATE_FILE,
    SUPERVISOR_LOG_FILE,
    make_container_id,
    read_proc_stat,
    state_with_meta,
    write_bytes_new,
    write_json_atomic,
)
from runplane.adapters.drivers.supervisor_launcher import read_request, serve_launches
from runplane.adapters.drivers.supervisor_loop import SupervisorLoop
from runplane.adapters.drivers.supervisor_os import Answer, prepare_supervisor, reap_orphans
from runplane.adapters.drivers.supervisor_output import OutputPump, RuntimeOutput
from runplane.adapters.drivers.supervisor_pool import Fresh, next_launch
from runplane.adapters.drivers.supervisor_spawn import spawn

if TYPE_CHECKING:
    from typing import Any

    from runplane.adapters.drivers.supervisor_launcher import Launch

_OUTPUT_DRAIN_S = 2.0
_SPEC_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EACCES,
        errno.EPERM,
        errno.ENOEXEC,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
    }
)
"""Why a spawn fails when the spec names what cannot run."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or not args[0].isdigit():
        usage = "python -m runplane.adapters.drivers.supervisor <socket fd> [<containers dir>]"
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    containers = args[1] if len(args) == 2 else ""
    return serve_launches(
        int(args[0]),
        containers,
        lambda launch, notify_fd: _serve_runtimes(containers, launch, notify_fd),
    )


def _serve_runtimes(containers: str, launch: Launch, notify_fd: int) -> int:
    """A forked supervisor's life: its runtime, then, while it stays as good
    as new, those the launcher hands it (`supervisor_pool`)."""
    fresh = Fresh()
    while True:
        code = _supervise_reporting(*launch, Answer(notify_fd))
        if not containers or not fresh.again(code):
            return code
        handed = next_launch(containers)
        if handed is None:
            return code
        request, notify_fd = handed
        launch = read_request(request)


def _supervise_reporting(
    launch_dir: str, meta: dict[str, Any] | None, inline: bytes, answer: Answer
) -> int:
    """`supervise`, answering the driver with the error when it fails."""
    try:
        return supervise(launch_dir, meta, answer, inline)
    except BaseException as exc:
        _report_failure(launch_dir)
        answer.give({"error": f"supervisor failed: {exc!r}"})  # unless it had its answer
        return 1


def _report_failure(launch_dir: str) -> None:
    """The traceback into the launch dir's `supervisor.log`, which the driver
    shows when a start fails (gone once the launch dir became the container's
    folder), and into the launcher's log with the supervisor's pid."""
    text = traceback.format_exc()
    with contextlib.suppress(OSError):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        fd = os.open(os.path.join(launch_dir, SUPERVISOR_LOG_FILE), flags, 0o600)
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    sys.stderr.write(f"supervisor {os.getpid()} for {launch_dir} failed:\n{text}")


def supervise(
    launch_dir: str, meta: dict[str, Any] | None, answer: Answer, inline: bytes = b""
) -> int:
    """Start the meta's command and see it to its end. `inline`: the meta as
    the request carried it (JSON), which the state file then holds too; empty
    when the driver wrote it to `meta.json` instead."""
    if meta is None:
        answer.give({"error": f"no launch metadata in {launch_dir}"})
        return 1
    ignored = prepare_supervisor()
    spec: dict[str, Any] = meta["spec"]
    try:
        pid, pump = _spawn(launch_dir, meta, ignored)
    except OSError as exc:
        # A program or folder that is not there or may not run is the spec's
        # to fix ("refused"); anything else (no more processes, say) the host's.
        refused = exc.errno in _SPEC_ERRNOS
        answer.give({"error": f"cannot execute {spec['command'][0]!r}: {exc}", "refused": refused})
        return 1
    try:
        container_dir, own_ticks = _register(launch_dir, pid, meta["runtime_id"], inline)
    except BaseException:
        # Nobody could find, stop or wait for it: it must not run on.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    # Who we are, too: a driver waiting on the runtime's end then knows whom
    # to wait for while the end is recorded, without reading state.json.
    answer.give(
        {"container_id": os.path.basename(container_dir), "supervisor": [os.getpid(), own_ticks]}
    )
    # Nothing here pins the folder runplane may want to delete.
    os.chdir("/")
    loop = SupervisorLoop(pump)
    status = loop.until_exit(pid)
    # Its last lines are written before its end is: a follower that sees the
    # end has seen all of its output.
    loop.drain(_OUTPUT_DRAIN_S)
    loop.close()
    _record_exit(container_dir, os.waitstatus_to_exitcode(status))
    # After exit.json: whoever is told looks and finds how it ended.
    tell_exit(os.path.dirname(container_dir), os.path.basename(container_dir), meta["runtime_id"])
    reap_orphans()
    return 0


def _register(launch_dir: str, pid: int, runtime_id: str, inline: bytes) -> tuple[str, int]:
    """Write the state file (with the meta in it, when the request carried
    one: one file made per start, not two) and move the launch dir to the
    container's id; return the container's folder and the supervisor's own
    start ticks. A launch dir the driver discarded (it gave up waiting) is
    not there to write to: the caller then kills what it started."""
    stat = read_proc_stat(pid)
    own = read_proc_stat(os.getpid())
    if stat is None or own is None:
        # The child stays at worst a zombie until we wait for it.
        raise RuntimeError("cannot read the started process from /proc")
    start_ticks = stat.start_ticks
    container_id = make_container_id(pid, start_ticks)
    state: dict[str, str | int | float | None] = {
        "container_id": container_id,
        "runtime_id": runtime_id,
        "pid": pid,
        "start_ticks": start_ticks,
        "supervisor_pid": os.getpid(),
        "supervisor_start_ticks": own.start_ticks,
        "started_at": time.time(),
    }
    # Whole before the folder is renamed: no reader finds it half written.
    write_bytes_new(os.path.join(launch_dir, STATE_FILE), state_with_meta(state, inline))
    container_dir = os.path.join(os.path.dirname(launch_dir), container_id)
    os.rename(launch_dir, container_dir)
    return container_dir, own.start_ticks


def _spawn(
    launch_dir: str, meta: dict[str, Any], ignored: list[signal.Signals]
) -> tuple[int, OutputPump]:
    """Start the command (see `supervisor_spawn`), its output on pipes the
    output pump reads; its pid and the pump. OSError, naming the program or
    the folder, if it cannot run."""
    # The supervisor (runplane's user) writes the log: the runtime user needs
    # no access to the data dir. Python opens every descriptor close-on-exec:
    # the child gets 0-2 only.
    output = RuntimeOutput(launch_dir, meta.get("logs") or {})
    try:
        pid = spawn(meta, output.stdout, output.stderr, ignored)
    except BaseException:
        output.abandon()
        raise
    return pid, output.started()


def _record_exit(container_dir: str, returncode: int) -> None:
    # The shell's (and Docker's) convention: killed by signal N is code 128 + N.
    killed_by = -returncode if returncode < 0 else None
    exit_record: dict[str, str | int | float | None] = {
        "exit_code": 128 + killed_by if killed_by else returncode,
        "signal": killed_by,
        "finished_at": time.time(),
    }
    # The container may have been removed meanwhile: then nobody wants the record.
    with contextlib.suppress(FileNotFoundError):
        write_json_atomic(os.path.join(container_dir, EXIT_FILE), exit_record)


if __name__ == "__main__":
    sys.exit(main())
