"""ProbeTracker: probe_failed once when the threshold is crossed, probe_recovered
on the first success after it, the schedule, and where a probe goes."""

from __future__ import annotations

from datetime import timedelta

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.probes import ProbeResult, ProbeTarget, ProbeTracker, target_of
from runplane.domain.health.spec import HealthCheck, ProbeType
from tests.support.clock import EPOCH
from tests.support.store_backends import make_record

OK = ProbeResult(True, 0.01)
BAD = ProbeResult(False, 0.01, "refused")
CHECK = HealthCheck(ProbeType.TCP, initial_delay_s=5, period_s=2, failure_threshold=3)


def test_three_failures_then_a_success_fire_failed_once_and_recovered_once() -> None:
    tracker = ProbeTracker(CHECK, EPOCH)
    results = [OK, BAD, BAD, BAD, BAD, BAD, OK, OK, BAD]
    fired = [tracker.record(r, EPOCH) for r in results]
    assert [e for e in fired if e] == [
        HealthEventType.PROBE_FAILED,
        HealthEventType.PROBE_RECOVERED,
    ]
    assert fired[3] is HealthEventType.PROBE_FAILED  # the third failure in a row
    assert fired[6] is HealthEventType.PROBE_RECOVERED


def test_a_success_resets_the_count_below_the_threshold() -> None:
    tracker = ProbeTracker(CHECK, EPOCH)
    fired = [tracker.record(r, EPOCH) for r in [BAD, BAD, OK, BAD, BAD, OK]]
    assert fired == [None] * 6


def test_a_tracker_that_starts_failing_reports_the_first_success() -> None:
    tracker = ProbeTracker(CHECK, EPOCH, failing=True)
    assert tracker.record(BAD, EPOCH) is None
    assert tracker.record(OK, EPOCH) is HealthEventType.PROBE_RECOVERED


def test_the_first_probe_waits_the_initial_delay_then_every_period() -> None:
    tracker = ProbeTracker(CHECK, EPOCH)
    assert not tracker.due(EPOCH + timedelta(seconds=4.9))
    assert tracker.due(EPOCH + timedelta(seconds=5))
    tracker.record(OK, EPOCH + timedelta(seconds=5))
    assert not tracker.due(EPOCH + timedelta(seconds=6.9))
    assert tracker.due(EPOCH + timedelta(seconds=7))


def test_the_target_is_the_endpoint_unless_the_check_names_a_port() -> None:
    record = make_record(
        engine_endpoint="10.0.0.5:7000", spec={"command": ["x"], "env": {"A": "1"}}
    )
    assert target_of(record, CHECK) == ProbeTarget(
        "10.0.0.5", 7000, {"A": "1"}, None, record.runtime_id
    )
    own_port = HealthCheck(ProbeType.HTTP, port=9000)
    assert target_of(record, own_port).port == 9000
    bare = make_record(engine_endpoint=None, spec={"command": ["x"], "port": 8123, "cwd": "/tmp"})
    assert target_of(bare, CHECK) == ProbeTarget("127.0.0.1", 8123, {}, "/tmp", bare.runtime_id)
