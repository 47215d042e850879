"""The supervisor's side of exit notices (see `process_exits`): tell the
driver listening on a state dir that a runtime ended.

Stdlib only, and light: the launcher imports it before it forks supervisors,
and every module it holds is memory each supervisor maps (and may copy)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator

EXITS_SOCKET = ".exits.sock"
TELL_TIMEOUT_S = 2.0
"""How long a supervisor waits for room in the driver's queue (a burst of ends)."""
SUN_PATH_MAX = 100
"""sun_path holds 108 bytes: a longer folder is reached through /proc/self/fd."""


@contextlib.contextmanager
def socket_address(containers: str, name: str = EXITS_SOCKET) -> Iterator[str]:
    """The address of the socket `name` in `containers`, for a bind or a connect."""
    path = os.path.join(containers, name)
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield path
        return
    fd = os.open(containers, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


def tell_exit(containers: str, container_id: str, runtime_id: str) -> None:
    """Tell the driver listening on `containers` that `container_id` ended.
    Never raises: a lost notice is found by a sweep."""
    notice = json.dumps({"container_id": container_id, "runtime_id": runtime_id}).encode()
    with (
        contextlib.suppress(OSError, AttributeError, ValueError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        socket_address(containers) as to,
    ):
        sock.settimeout(TELL_TIMEOUT_S)
        sock.sendto(notice, to)
