"""Exponential backoff with jitter, and a monotonic interval timer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


def backoff_delay_s(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """The delay before retry number `attempt` (1-based): base * 2^(attempt-1),
    capped, then "equal jitter" — half fixed, half random — so instances that
    failed together do not retry together, yet none retries at once."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + rand() * ceiling / 2


class Backoff:
    """Counts consecutive failures; `next_delay_s()` grows until `reset()`."""

    def __init__(
        self, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
    ) -> None:
        self._base_s = base_s
        self._cap_s = cap_s
        self._rand = rand
        self.attempts = 0

    def next_delay_s(self) -> float:
        self.attempts += 1
        return backoff_delay_s(
            self.attempts, base_s=self._base_s, cap_s=self._cap_s, rand=self._rand
        )

    def note_failure(self) -> None:
        """Count a failure that is retried at once; the next one waits longer."""
        self.attempts += 1

    def reset(self) -> None:
        self.attempts = 0


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
