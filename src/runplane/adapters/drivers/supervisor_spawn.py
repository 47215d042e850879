"""How a supervisor starts its runtime's command: in a process group of its
own, in its working directory with its whole environment, stdin on
/dev/null, stdout and stderr on the pipes the supervisor reads, every signal
at its default and none blocked.

`posix_spawn` (vfork and exec, no Python in the child) where the runtime
runs as the supervisor's own user: in a supervisor, itself a fresh fork,
`subprocess.Popen` costs some four times as much CPU, most of it pages
copied. `posix_spawn` cannot switch users, so a runtime user other than
runplane's goes through `Popen`, which sets groups, gid and uid in the child.
Either way the program is searched on the runtime's own PATH, and a failure
is an OSError naming the program (or the folder), as `Popen` names them.
Stdlib only (see `supervisor`)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess
    from typing import Any

_SPAWNED: list[subprocess.Popen[bytes]] = []
"""Held until the supervisor exits: a collected Popen would queue itself for
a reaping of its own, and the supervisor waits for the child itself."""
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR)


def spawned_by_popen() -> bool:
    """Whether a runtime was started through `Popen`, whose objects this
    supervisor holds to its end (it then serves no other runtime)."""
    return bool(_SPAWNED)


def spawn(meta: dict[str, Any], stdout: int, stderr: int, ignored: Sequence[signal.Signals]) -> int:
    """Start the meta file's command; its pid. `ignored`: the signals the
    supervisor ignores, which the runtime must not inherit ignored."""
    command: list[str] = meta["spec"]["command"]
    env: dict[str, str] = meta["env"]
    credentials: dict[str, Any] = meta.get("credentials") or {}
    if credentials:
        return _popen(command, env, meta["cwd"], stdout, stderr, credentials, ignored)
    # posix_spawn has no working directory of its own: the child inherits
    # ours (the supervisor moves to "/" once the runtime runs).
    os.chdir(meta["cwd"])
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    program = command[0]
    failure: OSError | None = None
    for path in _candidates(program, env):
        if not os.path.exists(path):
            continue  # what execve would say ENOENT to, without a spawn to learn it
        try:
            return os.posix_spawn(
                path,
                command,
                env,
                file_actions=actions,
                setpgroup=0,
                setsigdef=ignored,
                setsigmask=[],
            )
        except OSError as exc:
            # As execvpe: a candidate that is not there is passed over; the
            # first other failure is the one told.
            if failure is None or (failure.errno in _NOT_THERE and exc.errno not in _NOT_THERE):
                failure = exc
    code = failure.errno if failure is not None and failure.errno else errno.ENOENT
    raise OSError(code, os.strerror(code), program)


def _candidates(program: str, env: dict[str, str]) -> list[str]:
    if os.path.dirname(program):
        return [program]
    # As os.get_exec_path(env), without its warnings.catch_warnings(), whose
    # copy of the warning filters costs a fresh supervisor pages of its own.
    path = env.get("PATH")
    folders = (os.defpath if path is None else path).split(os.pathsep)
    return [os.path.join(folder, program) for folder in folders]


def _popen(
    command: list[str],
    env: dict[str, str],
    cwd: str,
    stdout: int,
    stderr: int,
    credentials: dict[str, Any],
    ignored: Sequence[signal.Signals],
) -> int:
    """The child sets its groups, then gid, then uid, after fork and before
    exec. Ignored signals are reset in the supervisor around the call: Popen
    resets only a few of them in the child."""
    # Imported here, not in the launcher: subprocess brings threading, whose
    # at-fork hook runs Python in every forked supervisor (~0.45 ms of CPU
    # each, most of it pages copied), for the user-switching path alone.
    import subprocess

    restore = _default_signals(ignored)
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            process_group=0,
            **credentials,
        )
    finally:
        restore()
    _SPAWNED.append(child)
    return child.pid


def _default_signals(ignored: Sequence[signal.Signals]) -> Callable[[], None]:
    for sig in ignored:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)

    def restore() -> None:
        for sig in ignored:
            if sig is not signal.SIGCHLD:  # the supervisor waits: never ignored again
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_IGN)

    return restore
