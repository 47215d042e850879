"""The cluster trial, short (`make cluster-trial` runs it at full size)."""

from __future__ import annotations

from tests.cluster.trial import run_trial, table


def test_a_leader_killed_on_a_cluster_loses_nothing_and_moves_within_3_s() -> None:
    report = run_trial(runtimes=12, jobs=200)
    print(table(report))
    assert report.events > 200  # the relay published through the cluster
    assert all(report.split.values()), report.split  # both instances took jobs
    assert report.clean, table(report)
