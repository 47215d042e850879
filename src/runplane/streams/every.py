"""A monotonic interval timer for housekeeping inside a loop (claims, trims,
gauges, purges): due at the first look, then once per interval."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """True from `due()` once per `interval_s` (and at the first call)."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._next: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._next is not None and now < self._next:
            return False
        self._next = now + self._interval_s
        return True

    def reset(self) -> None:
        """Make the next `due()` true."""
        self._next = None
