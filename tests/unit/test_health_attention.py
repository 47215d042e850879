"""The health monitor's attention list: a round between sweeps asks
`wants_look` only of the records `may_want_look` kept, so the second must say
yes wherever the first can, for every kind of watch and record."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from runplane.domain.health.probes import ProbeTracker
from runplane.domain.health.spec import health_check_of
from runplane.domain.statuses import Status
from runplane.services.health.watches import Watch, may_want_look, wants_look
from tests.support.store_backends import make_record

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOLD = frozenset({"process", "docker"})
CHECK = health_check_of({"health": {"type": "tcp", "port": 8080, "period_s": 5}})


def trackers() -> list[ProbeTracker | None]:
    assert CHECK is not None
    due = ProbeTracker(CHECK, NOW - timedelta(seconds=60))
    later = ProbeTracker(CHECK, NOW + timedelta(seconds=60))
    return [None, due, later]


def watches(container_id: str) -> list[Watch | None]:
    made: list[Watch | None] = [None]
    for other, tracker, unwell, in_flight in itertools.product(
        (False, True), trackers(), (False, True), (False, True)
    ):
        watch = Watch("c-other" if other else container_id, tracker, announced=True)
        watch.unwell = unwell
        if in_flight:
            watch.probe = object()  # type: ignore[assignment]  # only "is None" is asked
        made.append(watch)
    return made


def test_every_record_a_round_would_look_at_is_kept_for_it() -> None:
    base = make_record("rt-1", container_id="c-1")
    looked = kept = 0
    for driver, status in itertools.product(
        ("process", "docker", "memory"), (Status.RUNNING, Status.ENGINE_UNREACHABLE)
    ):
        record = replace(base, driver=driver, status=status)
        for watch in watches("c-1"):
            wants = wants_look(watch, record, TOLD, NOW)
            may = may_want_look(watch, record, TOLD)
            looked += wants
            kept += may
            assert may or not wants, (driver, status, watch)
    assert looked < kept  # some kept ones are not due yet (a probe later, in flight)


def test_a_settled_running_runtime_on_a_told_driver_without_a_probe_is_left_out() -> None:
    record = replace(make_record("rt-1", container_id="c-1"), driver="process")
    record = replace(record, status=Status.RUNNING)
    assert not may_want_look(Watch("c-1", None, announced=True), record, TOLD)
