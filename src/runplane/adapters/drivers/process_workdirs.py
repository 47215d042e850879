"""Empty work dirs that a remove leaves where they are, for a moment.

A start replaces a runtime's container: it removes the last one, and with it
the runtime's work dir (nothing carries over from one container to the next),
then makes the work dir again for the new one. A folder deleted and a folder
made are two metadata writes, and on some file systems making one is the
costliest step of a start (docs/benchmarks.md). A work dir that holds nothing
carries nothing over, so a remove leaves an empty one in place; unless a
start of the same runtime claims it within `LEAVE_S`, it is removed then, or
when the driver closes. (A process killed in that second leaves an empty
folder, which the next start of that runtime id takes over.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

LEAVE_S = 1.0


class EmptyWorkDirs:
    """`claimed(runtime_id)`: whether the runtime has a container, or one
    starting, now; `discard(path)`: how a folder that is no longer empty goes."""

    def __init__(self, claimed: Callable[[str], bool], discard: Callable[[Path], object]) -> None:
        self._claimed = claimed
        self._discard = discard
        self._left: dict[str, Path] = {}
        self._due: asyncio.TimerHandle | None = None

    def leave(self, runtime_id: str, path: Path) -> bool:
        """Leave `path` where it is if it is an empty folder (True); False if
        it holds something or is not a folder: the caller discards it."""
        if not _empty_folder(path):
            return False
        self._left[runtime_id] = path
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(LEAVE_S, self._sweep)
        return True

    def close(self) -> None:
        """Remove what is left and unclaimed now (the driver is closing)."""
        if self._due is not None:
            self._due.cancel()
        self._sweep(discard=False)

    def _sweep(self, *, discard: bool = True) -> None:
        self._due = None
        left, self._left = self._left, {}
        for runtime_id, path in left.items():
            if self._claimed(runtime_id):
                continue
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                # Something wrote into it meanwhile (a process that left the
                # runtime's group): it goes as a full one does.
                if discard:
                    with contextlib.suppress(OSError):
                        self._discard(path)
                else:
                    logger.warning("a work dir was left behind", extra={"path": str(path)})


def _empty_folder(path: Path) -> bool:
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False
