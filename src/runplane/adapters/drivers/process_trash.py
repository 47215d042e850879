"""Folders the process driver removes: moved into a trash folder at once,
deleted afterwards.

A container's folder (its logs) and a runtime's work dir (whatever the
runtime wrote) can be large, and deleting them cost a remove a thread
hand-off and the whole deletion, on the path of every restart. A rename
within the folder's own filesystem is one system call whatever the size: the
folder is gone from where anyone looks once `discard` returns (a fresh work
dir for the same runtime is made at once), and `rm`, in a process of its
own, deletes what was moved a second later, the folders discarded
meanwhile together. What
a process killed before its `rm` finished left in a trash folder is deleted
with its next discard there."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

DELETE_AFTER_S = 1.0
"""How long a discarded folder waits for its deletion: the removes of a burst
(fifty restarts) are then deleted by one `rm`, after the burst."""

TRASH_DIR = ".trash"
"""In the folder the discarded one was in. Neither a container id nor a
runtime id starts with a dot: no container or work dir is ever named so."""


class Trash:
    """Discards folders (`discard`) and has them deleted in the background."""

    def __init__(self) -> None:
        self._trashes: set[Path] = set()
        self._dirty = False
        """Something was discarded since the last pass looked."""
        self._due_on: asyncio.AbstractEventLoop | None = None
        """The loop a pass is due or running on."""
        self._pass: asyncio.Task[None] | None = None

    def discard(self, path: Path) -> bool:
        """Move `path` into its folder's trash and have it deleted; False if
        there was no `path`. OSError if it cannot be moved. Blocking, but a
        few system calls: call it on the event loop."""
        trash = path.parent / TRASH_DIR
        target = trash / secrets.token_hex(8)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            if not os.path.lexists(path):
                return False
            os.makedirs(trash, mode=0o700, exist_ok=True)  # the first discard here
            os.rename(path, target)
        self._trashes.add(trash)
        self._dirty = True
        self._empty_soon()
        return True

    def _empty_soon(self) -> None:
        loop = asyncio.get_running_loop()
        if self._due_on is loop:
            return  # the pass due or running, or the one its end starts, takes it
        self._due_on = loop  # (a pass left due on an ended loop never ran)
        loop.call_later(DELETE_AFTER_S, self._start_pass)

    def _start_pass(self) -> None:
        self._pass = asyncio.get_running_loop().create_task(self._empty(), name="trash")
        self._pass.add_done_callback(self._after_pass)

    def _after_pass(self, emptying: asyncio.Task[None]) -> None:
        self._due_on = self._pass = None
        if emptying.cancelled():
            return  # the loop is ending: the next process's first discard empties it
        if emptying.exception() is not None:
            logger.warning("emptying the trash failed", exc_info=emptying.exception())
        if self._dirty:  # discarded after the pass's last look
            self._empty_soon()

    async def _empty(self) -> None:
        """Delete everything in the trashes until nothing new came. By `rm`, in
        a process of its own: a thread here took the GIL back after each file
        it unlinked, and fifty removes at once then slowed the loop more than
        the deletions cost."""
        while self._dirty:
            self._dirty = False
            doomed = [str(trash / name) for trash in list(self._trashes) for name in _held(trash)]
            for first in range(0, len(doomed), _PATHS_PER_RM):
                await _remove(doomed[first : first + _PATHS_PER_RM])


_PATHS_PER_RM = 500


def _held(trash: Path) -> list[str]:
    try:
        return os.listdir(trash)
    except FileNotFoundError:
        return []


async def _remove(paths: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        "rm",
        "-rf",
        "--",
        *paths,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    if process.returncode:
        logger.warning(
            "cannot delete all of the trash",
            extra={"error": errors.decode("utf-8", "replace").strip()[-500:]},
        )


__all__ = ["TRASH_DIR", "Trash"]
