"""Waiting on processes runplane did not start itself, without polling.

A runtime's parent is its supervisor, so runplane cannot `waitpid` it; a
pidfd (Linux 5.3+) turns readable when the process ends, whoever its parent
is, and a pipe's read end reports end-of-file once every writer has gone.
Either lets the event loop sleep until the moment comes: fifty runtimes
stopping at once then cost fifty file descriptors, not thousands of /proc reads.
"""

from __future__ import annotations

import asyncio
import os
import signal

from runplane.adapters.drivers.process_files import live_process
from runplane.domain.errors import DriverError


async def process_end(pid: int, start_ticks: int, timeout_s: float) -> bool | None:
    """True once process `pid` (the one that started at `start_ticks`) has
    ended, False if it outlives `timeout_s`, None where there is no pidfd to
    wait on (the caller polls instead)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        return None
    try:
        # The pid may have been reused between the caller's look and the open.
        if live_process(pid, start_ticks) is None:
            return True
        return await readable(fd, timeout_s)
    finally:
        os.close(fd)


async def readable(fd: int, timeout_s: float) -> bool:
    """True once `fd` is readable (or at end-of-file), False after `timeout_s`."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, max(timeout_s, 0.0))
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True


async def read_to_end(fd: int, timeout_s: float, limit: int) -> bytes | None:
    """What non-blocking `fd` holds up to end-of-file (at most `limit` bytes;
    more is cut off), or None if end-of-file did not come within `timeout_s`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    chunks: list[bytes] = []
    size = 0

    def take() -> None:
        nonlocal size
        while not done.done():
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError as exc:
                done.set_exception(exc)
                return
            if not chunk or size >= limit:
                done.set_result(None)
                return
            chunks.append(chunk)
            size += len(chunk)

    loop.add_reader(fd, take)
    try:
        await asyncio.wait_for(done, max(timeout_s, 0.0))
    except TimeoutError:
        return None
    except OSError:
        pass  # the pipe broke: what came before it is the answer
    finally:
        loop.remove_reader(fd)
    return b"".join(chunks)[:limit]


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a runtime's whole process group; one already gone is no error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # ended meanwhile: the wait that follows sees it
    except PermissionError as exc:
        raise DriverError(f"cannot signal process group {pgid}: {exc}") from exc
