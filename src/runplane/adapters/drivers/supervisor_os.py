"""What a supervisor does with its own process: the launcher's set-up before
it forks supervisors, becoming a subreaper, the signals a runtime must not
inherit, the answer on the driver's pipe, and waiting for the runtime and
reaping its orphans. Stdlib only (see `supervisor`)."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_PR_SET_CHILD_SUBREAPER = 36
_ORPHAN_REAP_S = 2.0
_MAX_ANSWER_BYTES = 4000
"""Below PIPE_BUF: the answer goes into the pipe in one write, never blocking."""

_IGNORED_SIGNALS: list[signal.Signals] = []
"""What the launcher ignores, worked out once: each supervisor resets these."""
_PRCTL: list[Callable[..., int]] = []
"""libc's prctl, looked up once by the launcher (none where there is none)."""


def prepare_launcher() -> None:
    """Once, in the launcher, before the first fork."""
    # Supervisors are never waited for: with SIGCHLD ignored the kernel reaps
    # them, so one fork makes each, with no intermediate to wait on.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    _IGNORED_SIGNALS[:] = _ignored_signals()
    _PRCTL[:] = _find_prctl()
    # What is imported now is never collected: a supervisor's collections then
    # walk (and copy) none of the launcher's pages.
    gc.freeze()


class Answer:
    """The driver's pipe: one JSON object, then end-of-file, once. A driver
    that gave up waiting has closed its end: the write fails, harmlessly
    (SIGPIPE stays ignored in the supervisor)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def give(self, answer: dict[str, Any]) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        data = json.dumps(answer).encode()
        if len(data) > _MAX_ANSWER_BYTES:
            data = json.dumps({"error": str(answer.get("error", ""))[:2000]}).encode()
        try:
            os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)


def _find_prctl() -> list[Callable[..., int]]:
    if not sys.platform.startswith("linux"):
        return []
    try:
        return [ctypes.CDLL(None, use_errno=True).prctl]
    except (OSError, AttributeError):
        return []


def become_subreaper() -> None:
    """Orphans of the runtime's processes come to us rather than to init, which
    in a container may never reap them."""
    for prctl in _PRCTL:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _ignored_signals() -> list[signal.Signals]:
    ignored = []
    for sig in signal.valid_signals():
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                ignored.append(signal.Signals(sig))
        except (OSError, ValueError):
            pass
    return ignored


def prepare_supervisor() -> list[signal.Signals]:
    """Once, in a supervisor: become a subreaper, take SIGCHLD back (with it
    ignored, the kernel would reap the runtime before we could wait for it)
    and unblock every signal; the signals the launcher ignores (SIGPIPE among
    them: a driver gone before its answer costs a failed write, not the
    supervisor), which the runtime must get at their defaults."""
    become_subreaper()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return list(_IGNORED_SIGNALS)


def reap_orphans() -> None:
    """Reap what the group kill left dying; give up on the rest (new sessions)."""
    deadline = time.monotonic() + _ORPHAN_REAP_S
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)
