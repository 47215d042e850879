"""The short form of the fault trials (`make faults` runs the full ones)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.trials import SHORT, run_trial, table

pytestmark = pytest.mark.faults


def test_a_kill_and_a_postgres_restart_leave_every_count_at_zero(tmp_path: Path) -> None:
    """300 interleaved stop/start jobs over 30 process runtimes on Redis (AOF) and
    Postgres; `serve` is SIGKILLed at 30 % answered and Postgres restarted at 60 %.

    Every count is 0: every job gets a result, no job has more than one effective
    operation-log entry, no caller is told "failed" for an effect that happened,
    no runtime is left transient, every record agrees with its process and every
    state change has its event. The time to settle is printed, not asserted (a
    measurement: docs/reliability.md has the figures). The trial must also have
    hit jobs in flight, or it tested nothing.
    """
    began = time.monotonic()
    report = run_trial(SHORT, runtimes=30, jobs=300, settle_timeout_s=75, base_dir=tmp_path)
    print(table([report]))
    took_s = time.monotonic() - began
    print(f"in flight at the faults: {report.in_flight_at_faults}; took {took_s:.0f} s")
    counts = report.counts
    assert all(n > 0 for n in report.in_flight_at_faults), report.in_flight_at_faults
    assert counts.no_result == 0, counts.examples
    assert counts.doubled == 0, counts.examples
    assert counts.wrong == 0, (counts.failures, counts.examples)
    assert counts.transient == 0, counts.examples
    assert counts.disagree == 0, counts.examples
    assert counts.missing_events == 0, counts.examples
