"""Every: a housekeeping timer, due at the first look, then once per interval."""

from __future__ import annotations

from runplane.streams.every import Every


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
