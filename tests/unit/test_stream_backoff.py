"""Backoff delays: doubling, capped, jittered within [ceiling/2, ceiling]."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runplane.streams.backoff import Backoff, Every, backoff_delay_s


def test_the_delay_doubles_up_to_the_cap() -> None:
    ceilings = [backoff_delay_s(n, base_s=0.1, cap_s=1.0, rand=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_delay_stays_between_half_the_ceiling_and_the_ceiling(
    attempt: int, jitter: float
) -> None:
    delay = backoff_delay_s(attempt, base_s=0.05, cap_s=5.0, rand=lambda: jitter)
    ceiling = min(5.0, 0.05 * 2 ** min(attempt - 1, 62))
    assert ceiling / 2 <= delay <= ceiling


def test_reset_starts_over() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 1.0)
    assert [backoff.next_delay_s() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert backoff.next_delay_s() == 1.0


def test_every_is_due_at_first_then_once_per_interval() -> None:
    now = [100.0]
    every = Every(5.0, clock=lambda: now[0])
    assert every.due()
    assert not every.due()
    now[0] = 104.9
    assert not every.due()
    now[0] = 105.0
    assert every.due()
    every.reset()
    assert every.due()
