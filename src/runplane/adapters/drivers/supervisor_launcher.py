"""The launcher: a fork server for supervisors (see `supervisor`). For every
launch request on runplane's socket (a launch dir, the meta unless it was too
large, and the write end of the pipe the driver waits on) it hands the launch
to a supervisor waiting for one (`supervisor_pool`), or else forks a new one.
Returns when runplane closes its end, or dies. Stdlib only."""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runplane.adapters.drivers.supervisor_files import LAUNCH_REQUEST_BYTES, META_FILE, read_json
from runplane.adapters.drivers.supervisor_os import prepare_launcher
from runplane.adapters.drivers.supervisor_pool import IdlePool

if TYPE_CHECKING:
    from typing import Any

    Launch = tuple[str, dict[str, Any] | None, bytes]
    """A launch dir, its meta (None if unreadable) and the meta as the request carried it."""
    Supervise = Callable[[Launch, int], int]


def serve_launches(sock_fd: int, containers: str, supervise: Supervise) -> int:
    """`containers`: where supervisors wait for launches ("" for none: every
    launch a fork). `supervise`: a forked supervisor's work, given the launch
    and the pipe to answer on; its exit code."""
    sock = socket.socket(fileno=sock_fd)
    prepare_launcher()
    pool = IdlePool.open(containers) if containers else None
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    if pool is not None:
        poll.register(pool.fileno(), select.POLLIN)
    wait_s: float | None = None
    while True:
        timeout_ms = None if wait_s is None else int(wait_s * 1000) + 1
        # Supervisors asking for work first: they may take this round's launches.
        for fd, _events in sorted(poll.poll(timeout_ms), key=lambda ready: ready[0] == sock_fd):
            if fd != sock_fd and pool is not None:
                pool.accept()
            elif not _take_request(sock, pool, supervise):
                return 0
        if pool is not None:
            wait_s = pool.expire(time.monotonic())


def _take_request(sock: socket.socket, pool: IdlePool | None, supervise: Supervise) -> bool:
    """One launch request handed over or forked for; False at end-of-file."""
    message, fds, flags, _address = socket.recv_fds(sock, LAUNCH_REQUEST_BYTES, 1)
    if not message:
        return False
    try:
        # Every request carries its pipe; one without (or cut short) is not runplane's.
        if len(fds) == 1 and not flags & socket.MSG_TRUNC:
            os.set_inheritable(fds[0], False)  # the runtime must not hold it open
            if pool is None or not pool.hand_over(message, fds[0]):
                _fork_supervisor(sock, pool, read_request(message), fds[0], supervise)
    finally:
        for fd in fds:
            os.close(fd)
    return True


def read_request(message: bytes) -> Launch:
    """The launch a request names. Its meta, from the request or else its meta
    file, is parsed by whoever has the request first, the launcher included:
    in a fresh fork the parse's allocations would copy pages, some five times
    its cost."""
    path, _, inline = message.partition(b"\0")
    launch_dir = os.fsdecode(path)
    try:
        if inline:
            meta = json.loads(inline)
            return launch_dir, meta if isinstance(meta, dict) else None, inline
        return launch_dir, read_json(os.path.join(launch_dir, META_FILE)), inline
    except (OSError, ValueError):
        return launch_dir, None, inline


def _fork_supervisor(
    sock: socket.socket,
    pool: IdlePool | None,
    launch: Launch,
    notify_fd: int,
    supervise: Supervise,
) -> None:
    """Fork a supervisor, in a session of its own: it outlives the launcher
    and runplane. The launcher does not wait for it (SIGCHLD is ignored)."""
    if os.fork() > 0:
        return
    code = 1
    try:
        sock.close()
        if pool is not None:
            pool.close_in_child()
        os.setsid()
        _quiet_input_output()
        code = supervise(launch, notify_fd)
    finally:
        sys.stderr.flush()
        os._exit(code)


def _quiet_input_output() -> None:
    """stdin and stdout on /dev/null. stderr stays the launcher's log: a
    supervisor that fails also writes why into its launch dir's
    `supervisor.log`, and one that does not makes no file."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
