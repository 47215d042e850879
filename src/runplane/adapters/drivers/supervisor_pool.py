"""Supervisors that serve again. Once its runtime has ended, and the end is
recorded and told, a supervisor asks the launcher for the next launch
instead of exiting: a start after a stop then costs no fork, no pages copied
and no interpreter's exit (in bursts of stops and starts, about a tenth of a
start round's CPU).

The launcher listens on `<containers>/.supervisors.sock` (runplane's user
only: the folder is 0700, the socket 0600) and keeps only its own children
(the peer's credentials: our uid, and the launcher is its parent), so a
supervisor of an earlier launcher, or anything else, finds its connection
closed and goes. A waiting supervisor is handed a launch request as it
arrives, just as a fork would have been; the launcher keeps at most
`MAX_IDLE` of them, each for `IDLE_S`, then closes its connection, and the
supervisor exits on the end-of-file (as it does when the launcher ends). Only
the launcher sends, so a launch never crosses a supervisor on its way out.

A supervisor serves again only as good as new (`Fresh`): its runtime ended
without a failure of its own, no child is left, it holds no more descriptors
than it was forked with, and fewer than `MAX_RUNS` runtimes are behind it.
Stdlib only (see `supervisor`)."""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import struct
import sys
import time

from runplane.adapters.drivers.supervisor_exits import socket_address
from runplane.adapters.drivers.supervisor_files import LAUNCH_REQUEST_BYTES
from runplane.adapters.drivers.supervisor_spawn import spawned_by_popen

POOL_SOCKET = ".supervisors.sock"
MAX_IDLE = 64
IDLE_S = 10.0
"""How long a supervisor waits for a launch: a burst's stops feed the next
burst's starts; a quiet host gets the memory back soon after."""
MAX_RUNS = 100
"""Runtimes one supervisor sees through before it exits: whatever a run
leaves behind (pages written, a slow leak) is bounded."""
_CONNECT_TIMEOUT_S = 5.0
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class IdlePool:
    """The launcher's side: the listening socket and the supervisors waiting
    on it, the longest-waiting first."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener
        self._idle: collections.deque[tuple[socket.socket, float]] = collections.deque()

    @classmethod
    def open(cls, containers: str) -> IdlePool | None:
        """Listening on `containers`, or None (logged to the launcher's log)
        where it cannot be: every launch is then a fork."""
        if not hasattr(socket, "SO_PEERCRED"):
            return None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with socket_address(containers, POOL_SOCKET) as address:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(address)  # an earlier launcher's
                listener.bind(address)
                os.chmod(address, 0o600)
            listener.listen(MAX_IDLE)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            print(f"launcher: supervisors will not serve again: {exc!r}", file=sys.stderr)
            return None
        return cls(listener)

    def fileno(self) -> int:
        return self._listener.fileno()

    def accept(self) -> None:
        """Take the supervisors asking for work: our children only."""
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors, say: it finds end-of-file and exits
            if len(self._idle) < MAX_IDLE and _our_child(conn):
                conn.setblocking(False)
                self._idle.append((conn, time.monotonic()))
            else:
                conn.close()

    def hand_over(self, request: bytes, notify_fd: int) -> bool:
        """Give the launch to the supervisor that waited least (its pages are
        the likeliest still in a cache); False if none would take it."""
        while self._idle:
            conn, _since = self._idle.pop()
            try:
                socket.send_fds(conn, [request], [notify_fd])
                return True
            except OSError:
                continue  # it died meanwhile: the next one
            finally:
                conn.close()  # it connects again when it is done
        return False

    def expire(self, now: float) -> float | None:
        """Close the connections of those that waited `IDLE_S`; seconds until
        the next one is due, or None with nobody waiting."""
        while self._idle and now - self._idle[0][1] >= IDLE_S:
            self._idle.popleft()[0].close()
        return self._idle[0][1] + IDLE_S - now if self._idle else None

    def close_in_child(self) -> None:
        """In a fork: none of this is the new supervisor's (a copy of an idle
        one's connection would keep that one from seeing the launcher go)."""
        self._listener.close()
        for conn, _since in self._idle:
            conn.close()
        self._idle.clear()


def _our_child(conn: socket.socket) -> bool:
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
        pid, uid, _gid = _CREDENTIALS.unpack(raw)
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except (OSError, struct.error):
        return False
    # After the command name (which may hold ')'): state, then the parent's pid.
    fields = data[data.rindex(b")") + 2 :].split()
    return uid == os.getuid() and len(fields) > 1 and int(fields[1]) == os.getpid()


class Fresh:
    """A supervisor's check that it may serve again: made as it is forked."""

    def __init__(self) -> None:
        self._fds = _open_fds() - 1  # less the answer pipe, which each run closes
        self._runs = 0

    def again(self, code: int) -> bool:
        self._runs += 1
        if code != 0 or self._runs >= MAX_RUNS or spawned_by_popen() or not _no_children():
            return False
        return _open_fds() == self._fds >= 0


def _no_children() -> bool:
    """Nothing left to reap or wait for (what escaped the group and lingers is
    a child of ours, and would be a stranger to the next runtime's waits)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -2  # never equal: no /proc, no reuse


def next_launch(containers: str) -> tuple[bytes, int] | None:
    """Wait for the launcher's next launch: the request and the pipe to answer
    on; None when it closes the connection (or cannot be reached)."""
    line = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        line.settimeout(_CONNECT_TIMEOUT_S)
        with socket_address(containers, POOL_SOCKET) as address:
            line.connect(address)
        line.settimeout(None)
        message, fds, flags, _address = socket.recv_fds(line, LAUNCH_REQUEST_BYTES, 1)
    except OSError:
        return None
    finally:
        line.close()
    if message and len(fds) == 1 and not flags & socket.MSG_TRUNC:
        os.set_inheritable(fds[0], False)  # the runtime must not hold it open
        return message, fds[0]
    for fd in fds:
        os.close(fd)
    return None
