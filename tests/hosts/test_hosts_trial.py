"""The hosts trial, short (`make hosts-trial` runs it at full size)."""

from __future__ import annotations

from tests.hosts.trial import run_trial, table


def test_two_serves_three_agents_lose_and_regain_a_host_cleanly() -> None:
    report = run_trial(runtimes=12, jobs=200)
    print(table(report))
    assert len(report.spread) == 3, report.spread  # every host got runtimes
    if report.netns:  # each host's runtimes live in its own network
        assert report.runtime_networks == 3, report.runtime_networks
    assert report.clean, table(report)
