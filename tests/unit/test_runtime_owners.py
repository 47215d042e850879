"""The screen's memory of runtimes' teams (services/lifecycle/owners.py)."""

from __future__ import annotations

import pytest

from runplane.services.lifecycle.owners import RuntimeOwners


def test_the_longest_known_is_forgotten_past_the_bound() -> None:
    owners = RuntimeOwners(max_kept=2)
    owners.learn("a", "alpha")
    owners.learn("b", "beta")
    owners.learn("a", "alpha")  # known: neither moved nor counted twice
    owners.learn("c", "gamma")
    assert [owners.team_of(r) for r in "abc"] == [None, "beta", "gamma"]


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RuntimeOwners(max_kept=0)
