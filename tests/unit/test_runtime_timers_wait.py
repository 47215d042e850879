"""How long the timers loop sleeps after a round (issue 15): until the
earliest deadline or idle look it knows of, at most its longest sleep; a
deadline or look already past (it could not be spent) waits the interval, so
the loop never spins on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.leadership import Leadership
from runplane.workers.runtime_timers import RuntimeTimersLoop
from tests.support.clock import FakeClock
from tests.support.tokens import SequentialTokens


class Deadlines:
    def __init__(self, clock: FakeClock, in_s: float | None) -> None:
        self.clock = clock
        self.batch = 100
        self.in_s = in_s

    async def fire_due(self) -> int:
        return 0

    async def next_deadline(self, *, within_s: float) -> datetime | None:
        if self.in_s is None or self.in_s > within_s:
            return None
        return self.clock.now() + timedelta(seconds=self.in_s)


class Looks:
    def __init__(self, in_s: float | None) -> None:
        self.in_s = in_s

    async def check_once(self) -> list[str]:
        return []

    def next_look_in_s(self) -> float | None:
        return self.in_s


def timers(deadline_in_s: float | None, look_in_s: float | None) -> RuntimeTimersLoop:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    leadership = Leadership(InMemoryLeaseStore(clock), SequentialTokens(), "timers")
    return RuntimeTimersLoop(
        cast(Any, Deadlines(clock, deadline_in_s)),
        cast(Any, Looks(look_in_s)),
        leadership,
        interval_s=1.0,
        idle_wait_max_s=5.0,
    )


@pytest.mark.parametrize(
    ("deadline_in_s", "look_in_s", "wait_s"),
    [
        (None, None, 5.0),  # nothing known: the longest sleep
        (2.5, None, 2.52),  # until the deadline, and a hair past it
        (None, 0.5, 0.52),  # until the idle look
        (3.0, 1.0, 1.02),  # the earlier of the two
        (-4.0, None, 1.0),  # passed, not spent (an operation under way): the interval
        (None, -1.0, 1.0),  # a look still due (its check failed): the interval
        (60.0, None, 5.0),  # beyond the longest sleep
    ],
)
async def test_the_loop_sleeps_until_the_first_thing_due(
    deadline_in_s: float | None, look_in_s: float | None, wait_s: float
) -> None:
    loop = timers(deadline_in_s, look_in_s)
    try:
        assert await loop.run_once() == pytest.approx(wait_s)
    finally:
        await loop.leadership.release()
