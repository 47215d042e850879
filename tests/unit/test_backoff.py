"""The one backoff: doubling, capped, jittered within [ceiling/2, ceiling]."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplane.domain.backoff import Backoff, backoff_delay_s


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


def test_the_injected_random_source_spreads_the_delay() -> None:
    low = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 0.0)
    high = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 0.5)
    assert [low.next_delay_s() for _ in range(3)] == [0.5, 1.0, 2.0]
    assert [high.next_delay_s() for _ in range(3)] == [0.75, 1.5, 3.0]


def test_reset_starts_over() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 1.0)
    assert [backoff.next_delay_s() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert backoff.next_delay_s() == 1.0


def test_a_failure_retried_at_once_still_counts() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 1.0)
    backoff.note_failure()
    assert backoff.next_delay_s() == 2.0


@pytest.mark.parametrize(("base_s", "cap_s"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_backoff_needs_a_positive_base_below_its_cap(base_s: float, cap_s: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=base_s, cap_s=cap_s)
