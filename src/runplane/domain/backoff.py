"""The one backoff: exponential delays, capped, with "equal jitter".

Every part of runplane that waits longer after each failure in a row uses it:
the stream consumers (a Redis error, an offset-mode retry), the workers'
PeriodicLoop (a failed round, a dropped engine event stream), and the restart
policy (the n-th restart in its window). It lives in the domain because that is
the one package all of them may import: the streams runtime imports no worker
or adapter, services import no worker, adapters only domain and ports. It is
arithmetic on an injected random source, no I/O, as the webhook retry schedule
next to it (`domain/webhooks/rules.py`, a fixed table, not a formula) is."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay_s(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """The delay before retry number `attempt` (1-based): base * 2^(attempt-1),
    capped, then "equal jitter" — half fixed, half random — so instances that
    failed together do not retry together, yet none retries at once. `rand`
    returns a number in [0, 1)."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + rand() * ceiling / 2


class Backoff:
    """Counts consecutive failures; `next_delay_s()` grows until `reset()`."""

    def __init__(
        self, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got {base_s} and {cap_s}")
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
