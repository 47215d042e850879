"""Exit notices: a process runtime's supervisor tells the driver that its
runtime ended, so the end is seen at once instead of by looking at every
runtime every second.

The driver binds a datagram socket, `<containers>/.exits.sock` (runplane's
user only: the folder is 0700, the socket 0600). A supervisor, once it has
written `exit.json`, sends `{"container_id", "runtime_id"}` there (`tell_exit`).
Best effort on purpose: nobody listening (runplane down or restarting), a
queue still full after a short wait, a supervisor of an older runplane: the
notice is lost, and the slow sweep its readers keep (workers/exit_watch.py,
the health monitor) finds the end instead. A notice only says where to look:
the reader inspects the container, so a stray or forged one changes nothing.

The supervisor's side (`tell_exit`) is in `supervisor_exits`, stdlib only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from runplane.adapters.drivers.process_files import parse_container_id
from runplane.adapters.drivers.supervisor_exits import EXITS_SOCKET, socket_address, tell_exit

logger = logging.getLogger(__name__)

_MAX_NOTICE_BYTES = 4096
_MAX_HEARD = 100_000


class ExitNoticeSocket:
    """The driver's end of the notices (ports.exits.ExitNotices). Bound on the
    first `listen`, read on the event loop. Ends that runplane itself caused
    here (a stop, a remove: `expect`) are dropped: they are their operation's
    outcome, not news."""

    def __init__(self, containers: Path, *, remembered: int = 4096) -> None:
        self._containers = containers
        self._remembered = remembered
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: Callable[[], None] | None = None
        self._heard: dict[str, str] = {}
        self._expected: OrderedDict[str, None] = OrderedDict()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}

    def __repr__(self) -> str:
        return f"ExitNoticeSocket({str(self._containers)!r})"

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def expect(self, container_id: str) -> None:
        """runplane is ending `container_id` itself: its end is no news."""
        self._expected[container_id] = None
        self._expected.move_to_end(container_id)
        while len(self._expected) > self._remembered:
            self._expected.popitem(last=False)

    def ended_by_runplane(self, container_id: str) -> bool:
        return container_id in self._expected

    async def told(self, container_id: str, timeout_s: float, recorded: Callable[[], bool]) -> None:
        """Until `container_id`'s notice is heard (its end is recorded then),
        at most `timeout_s`; at once if `recorded()` says so already (looked
        at once the wait is in place: a notice heard before is not missed)."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(container_id, [])
        waiters.append(waiter)
        try:
            if not recorded():
                await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            waiters.remove(waiter)
            if not waiters:
                del self._waiting[container_id]

    def listen(self, wake: Callable[[], None]) -> bool:
        """Bind (taking the address over from an earlier runplane on this state
        dir) and read on the running loop; `wake` is called when notices wait.
        False, logged, when the socket cannot be had: the caller looks instead."""
        self._wake = wake
        if self._sock is not None:
            return True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            self._containers.mkdir(mode=0o700, parents=True, exist_ok=True)
            with socket_address(str(self._containers)) as address:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(address)  # left by a runplane that stopped or died
                sock.bind(address)
                os.chmod(address, 0o600)
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._read)
        except (OSError, AttributeError, ValueError) as exc:
            sock.close()
            logger.warning(
                "exit notices unavailable; process runtimes are looked at instead",
                extra={"path": str(self._containers), "error": repr(exc)},
            )
            return False
        self._sock, self._loop = sock, loop
        return True

    def take(self) -> dict[str, str]:
        """The ends heard since the last take: container id -> runtime id."""
        heard, self._heard = self._heard, {}
        return heard

    def close(self) -> None:
        """Stop listening. The socket file stays: a successor binds over it."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()

    def _read(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(_MAX_NOTICE_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                logger.warning("exit notices broke off", extra={"error": repr(exc)})
                self.close()
                break
            self._note(data)
        if self._wake is not None and (self._heard or self._sock is None):
            self._wake()  # a broken socket wakes the reader too: it looks instead

    def _note(self, data: bytes) -> None:
        try:
            notice = json.loads(data)
            container_id, runtime_id = notice["container_id"], notice["runtime_id"]
        except (ValueError, TypeError, KeyError):
            return
        if not isinstance(container_id, str) or not isinstance(runtime_id, str):
            return
        for waiter in self._waiting.get(container_id, ()):
            if not waiter.done():
                waiter.set_result(None)
        if parse_container_id(container_id) is None or container_id in self._expected:
            return
        if len(self._heard) < _MAX_HEARD:  # past it, the sweep finds the rest
            self._heard[container_id] = runtime_id


__all__ = ["EXITS_SOCKET", "ExitNoticeSocket", "tell_exit"]
