from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from runplane.domain.errors import RunplaneError
from runplane.domain.records import Keep, StatusChange
from runplane.domain.statuses import TRANSITIONS, InvalidTransition, Status

AT = datetime(2030, 1, 1, tzinfo=UTC)


def change(current: Status, target: Status, **fields: object) -> StatusChange:
    return replace(StatusChange("rt-1", current, 3, target, AT), **fields)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.PENDING, Status.RUNNING),
        (Status.REMOVED, Status.STOPPED),
        (Status.STOPPED, Status.PAUSED),
        (Status.RUNNING, Status.RUNNING),
    ],
)
def test_a_change_the_table_refuses_cannot_be_built(current: Status, target: Status) -> None:
    with pytest.raises(InvalidTransition) as refused:
        StatusChange("rt-1", current, 3, target, AT)
    assert isinstance(refused.value, RunplaneError)
    assert (refused.value.current, refused.value.target) == (current, target)
    assert refused.value.reason == str(refused.value)
    assert f"{current} may move to" in refused.value.reason


def test_replace_cannot_turn_a_change_into_a_refused_one() -> None:
    allowed = StatusChange("rt-1", Status.RUNNING, 3, Status.STOPPING, AT)
    with pytest.raises(InvalidTransition):
        replace(allowed, status=Status.STARTING)
    with pytest.raises(InvalidTransition):
        replace(allowed, expected_status=Status.PENDING)


def test_every_allowed_move_can_be_built() -> None:
    for current, targets in TRANSITIONS.items():
        for target in targets:
            assert StatusChange("rt-1", current, 3, target, AT).status is target


def test_kept_fields_are_not_written_and_none_clears() -> None:
    written = change(Status.RUNNING, Status.STOPPING, container_id=None).updated_fields()
    assert written["container_id"] is None
    assert "engine_endpoint" not in written
    assert "spec" not in written
    assert written["status"] is Status.STOPPING
    assert written["version"] == 4
    assert Keep.KEEP not in written.values()


def test_the_container_is_checked_only_when_an_expected_one_is_given() -> None:
    assert not change(Status.RUNNING, Status.STOPPING).checks_container
    assert change(Status.RUNNING, Status.STOPPING, expected_container_id=None).checks_container
    assert change(Status.RUNNING, Status.STOPPING, expected_container_id="c-1").checks_container
