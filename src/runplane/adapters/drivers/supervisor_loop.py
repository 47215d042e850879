"""A supervisor's one loop: it pumps the runtime's output and reaps its
children until the runtime's main process ends, then drains what is left
of the output. One thread waits on everything: the output pipes and a wakeup
pipe that SIGCHLD writes to (`signal.set_wakeup_fd`), so a child's end is
seen at once, with no polling and no second thread. Stdlib only (see
`supervisor`)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

from runplane.adapters.drivers.supervisor_output import OutputPump

_WAKE_BYTES = 4096


class SupervisorLoop:
    def __init__(self, pump: OutputPump) -> None:
        self._pump = pump
        self._poll = select.poll()
        self._wake_read, wake_write = os.pipe()
        self._wake_write = wake_write
        for fd in (self._wake_read, wake_write):
            os.set_blocking(fd, False)
        # A handler of our own: with SIGCHLD at its default the signal is
        # discarded and wakes nothing. The handler does nothing; the byte
        # Python writes to the wakeup pipe for it is what wakes the poll.
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _noted)
        self._poll.register(self._wake_read, select.POLLIN)
        for fd in pump.fds:
            self._poll.register(fd, select.POLLIN)

    def until_exit(self, pid: int) -> int:
        """Until `pid` (the runtime's main process) ends, reaping other
        children meanwhile; its wait status."""
        while True:
            status = _reap(pid)
            if status is not None:
                return status
            self._serve(None)

    def drain(self, timeout_s: float) -> None:
        """Pump output until every pipe closed, for at most `timeout_s`: a
        process that escaped the group may hold them open."""
        deadline = time.monotonic() + timeout_s
        while self._pump.fds:
            left = deadline - time.monotonic()
            if left <= 0:
                self._pump.abandon()
                return
            self._serve(left)

    def close(self) -> None:
        """SIGCHLD and its wakeup pipe back as they were: the supervisor may
        serve another runtime."""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _serve(self, limit_s: float | None) -> None:
        """One wait for output, a child's end or a partial line falling due."""
        now = time.monotonic()
        wait_s = self._pump.flush_in(now)
        if limit_s is not None:
            wait_s = limit_s if wait_s is None else min(wait_s, limit_s)
        timeout_ms = None if wait_s is None else max(int(wait_s * 1000) + 1, 0)
        for fd, _events in self._poll.poll(timeout_ms):
            if fd == self._wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, _WAKE_BYTES)
            elif not self._pump.read(fd):
                self._poll.unregister(fd)
        self._pump.flush(time.monotonic())


def _noted(_signum: int, _frame: object) -> None:
    """SIGCHLD's handler: the wakeup pipe has the news already."""


def _reap(pid: int) -> int | None:
    """Reap every child that ended; `pid`'s wait status once it has ended.
    ChildProcessError if there is no child left at all: `pid` was not ours."""
    while True:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None or info.si_pid == 0:
            return None
        if info.si_pid != pid:
            os.waitpid(info.si_pid, 0)
            continue
        # Still a zombie, `pid` holds its process group id: no other process
        # can have taken it, so killing the group hits only the runtime's leftovers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
