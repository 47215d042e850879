"""Starting a runtime's supervisor and hearing back from it.

The driver makes the launch dir, asks the launcher (a fork server for
supervisors, see `supervisor`) to start a supervisor for it, and reads,
without polling, the pipe the supervisor answers on: a container id, or the
reason the command could not run, then end-of-file. The launch's meta
travels in the request and the supervisor keeps it in the container's state
file (a file made is the costliest part of a start on some file systems, and
the supervisor runs beside runplane); only a meta larger than
`INLINE_META_BYTES` is written by the driver, as `meta.json`, and read back
by the launcher.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import runplane
from runplane.adapters.drivers.process_files import (
    LAUNCH_PREFIX,
    ContainerFiles,
    write_json_new,
)
from runplane.adapters.drivers.process_user import RuntimeSandbox
from runplane.adapters.drivers.process_wait import read_to_end
from runplane.domain.errors import DriverError, SpecRefused

SUPERVISOR_MODULE = "runplane.adapters.drivers.supervisor"
# Import the supervisor from this very runplane, whether it is installed or run
# from a checkout. `sys.path[0]` is absolute, unlike the "" of `-c`: the
# supervisor changes directory, and later imports must not find modules in
# the runtime's folder.
_PACKAGE_ROOT = Path(runplane.__file__).resolve().parent.parent
_SUPERVISOR_CODE = (
    f"import sys; sys.path[0] = {str(_PACKAGE_ROOT)!r}; "
    f"from {SUPERVISOR_MODULE} import main; sys.exit(main())"
)
_LOG_TAIL_BYTES = 2000
_MAX_ANSWER_BYTES = 65536
_LAUNCHER_EXIT_S = 5.0
LAUNCHER_LOG = ".launcher.log"
INLINE_META_BYTES = 16 * 1024  # well below LAUNCH_REQUEST_BYTES, with the path
"""Metas up to this size travel in the launch request. A larger one (a spec
near its 64 KiB limit) is written to the launch dir instead: requests queue
in the socket's buffer, and a few large ones would fill it and block the
event loop until the launcher caught up."""


@dataclass(frozen=True, slots=True)
class Launch:
    """A launch dir (made, empty unless the meta was too large to travel) and
    the request that asks the launcher for its supervisor."""

    dir: Path
    request: bytes


def prepare_launch(
    containers: Path,
    runtime_id: str,
    spec: dict[str, Any],
    sandbox: RuntimeSandbox,
    logs: dict[str, int] | None = None,
) -> Launch:
    """A fresh launch dir, and the request carrying what the supervisor needs
    to start `spec`: the command, and the user, working directory and whole
    environment it runs with (the sandbox's, nothing of runplane's)."""
    containers.mkdir(mode=0o700, parents=True, exist_ok=True)
    sandbox.prepare(runtime_id)
    cwd = sandbox.cwd(runtime_id, spec.get("cwd"), create=True)
    launch_dir = containers / f"{LAUNCH_PREFIX}{secrets.token_hex(8)}"
    launch_dir.mkdir(mode=0o700)
    meta = {
        "runtime_id": runtime_id,
        "spec": spec,
        "cwd": cwd,
        "env": sandbox.env(runtime_id, spec["env"]),
        "credentials": sandbox.credentials(),
        "created_at": time.time(),
        "logs": logs or {},
    }
    encoded = json.dumps(meta).encode()
    request = os.fsencode(launch_dir)
    if len(encoded) <= INLINE_META_BYTES:
        return Launch(launch_dir, request + b"\0" + encoded)
    # The launch dir is new and ours: nobody reads meta.json before the launcher.
    write_json_new(ContainerFiles(launch_dir).meta, meta)
    return Launch(launch_dir, request)


class SupervisorLauncher:
    """The launcher process, a fork server for supervisors: one Python started
    once, with the supervisor's modules imported, forks each runtime's
    supervisor in about a millisecond, where starting an interpreter per
    runtime cost some twenty. Started on first use and again if it died; it
    exits when runplane closes its end of the socket, or dies. The supervisors
    it forks are detached: they outlive it and runplane alike. They run as
    runplane's user (they write the container's files); each runtime gets
    the environment and user its meta file names."""

    def __init__(self, containers: Path) -> None:
        self._containers = containers
        self._lock = threading.Lock()
        self._running: _LauncherProcess | None = None
        self._finalizer: weakref.finalize[[], SupervisorLauncher] | None = None

    def launch(self, launch: Launch) -> int:
        """Have a supervisor started for `launch`; return the read end
        (non-blocking) of the pipe it answers on, which reaches end-of-file
        once it has answered (or died). Blocking, briefly: one message."""
        notify_read, notify_write = os.pipe()
        os.set_blocking(notify_read, False)
        try:
            with self._lock:
                self._send(launch.request, notify_write)
        except BaseException:
            os.close(notify_read)
            raise
        finally:
            os.close(notify_write)
        return notify_read

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _send(self, message: bytes, fd: int) -> None:
        for attempt in (1, 2):
            if self._running is None or not self._running.alive():
                self._discard()
                self._running = _LauncherProcess.start(self._containers)
                # Garbage-collected unclosed (a test's driver, say): end it then.
                self._finalizer = weakref.finalize(self, self._running.close)
            try:
                socket.send_fds(self._running.socket, [message], [fd])
                return
            except OSError as exc:
                self._discard()  # it died since it last served: start another
                if attempt == 2:
                    raise DriverError(f"cannot reach the runtime launcher: {exc}") from exc

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the launcher, once
            self._finalizer = None
        self._running = None


@dataclass(frozen=True, slots=True)
class _LauncherProcess:
    process: subprocess.Popen[bytes]
    socket: socket.socket

    @classmethod
    def start(cls, containers: Path) -> _LauncherProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # -S: the supervisor needs the standard library only; skipping `site`
        # (the virtualenv's .pth files) keeps the launcher small.
        fd = str(theirs.fileno())
        command = [sys.executable, "-S", "-c", _SUPERVISOR_CODE, fd, str(containers)]
        try:
            containers.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(containers / LAUNCHER_LOG, "ab") as stderr:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    # Until a supervisor moves to its runtime's folder, it pins none of the user's.
                    cwd=_PACKAGE_ROOT,
                    # Out of runplane's session: a Ctrl-C meant for runplane
                    # must not hit it in the middle of a fork.
                    start_new_session=True,
                    close_fds=True,
                    pass_fds=(theirs.fileno(),),
                )
        except OSError as exc:
            ours.close()
            raise DriverError(f"cannot start the runtime launcher: {exc}") from exc
        finally:
            theirs.close()
        return cls(process, ours)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        self.socket.close()  # the launcher sees end-of-file and exits
        try:
            self.process.wait(timeout=_LAUNCHER_EXIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True, slots=True)
class Started:
    """A supervisor's answer: the container it started, and itself (pid and
    start ticks; None from a supervisor that does not say)."""

    container_id: str
    supervisor: tuple[int, int] | None


async def await_answer(launch_dir: Path, notify_fd: int, timeout_s: float) -> Started:
    """The started container; DriverError with the supervisor's reason if
    the command could not run, or if no answer came within `timeout_s`.
    Closes `notify_fd`, the pipe `SupervisorLauncher.launch` returned: a
    supervisor answering later finds it closed."""
    try:
        data = await read_to_end(notify_fd, timeout_s, _MAX_ANSWER_BYTES)
    finally:
        os.close(notify_fd)
    answer = _parse_answer(data)
    if answer is None:
        tail = await asyncio.to_thread(log_tail, ContainerFiles(launch_dir).supervisor_log)
        if data is not None:
            raise DriverError(f"the runtime supervisor ended without answering: {tail}")
        raise DriverError(f"the runtime supervisor did not answer within {timeout_s:g}s: {tail}")
    if isinstance(answer.get("container_id"), str):
        return Started(str(answer["container_id"]), _identity(answer.get("supervisor")))
    error = str(answer.get("error", "the runtime supervisor failed"))
    if answer.get("refused") is True:
        raise SpecRefused(error)  # a program that is not there: invalid_request
    raise DriverError(error)


def _identity(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return value[0], value[1]
    return None


def _parse_answer(data: bytes | None) -> dict[str, Any] | None:
    try:
        answer = json.loads(data) if data else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def discard_launch(launch_dir: Path) -> None:
    """Forget a failed launch. A supervisor still busy with it finds its dir
    gone and kills what it started."""
    shutil.rmtree(launch_dir, ignore_errors=True)


def log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace").strip() or "(no output)"
    except OSError:
        return "(no output)"
