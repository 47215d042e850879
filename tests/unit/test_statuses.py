from __future__ import annotations

import json

import pytest

from runplane.domain.statuses import (
    PERSISTENT,
    TRANSIENT,
    TRANSITIONS,
    InvalidTransition,
    Status,
    check_transition,
    require_transition,
    transitions_as_json,
    transitions_as_mermaid,
)


def test_every_status_has_a_row_and_every_target_is_a_status() -> None:
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status)


def test_transient_and_persistent_partition_the_statuses() -> None:
    assert set(Status) == TRANSIENT | PERSISTENT
    assert not TRANSIENT & PERSISTENT
    assert Status.RUNNING in PERSISTENT
    assert Status.STOPPING in TRANSIENT


def test_every_transient_status_can_settle() -> None:
    """A transient status must lead somewhere, or a runtime could be stuck for good."""
    for status in TRANSIENT:
        assert TRANSITIONS[status]


def test_gate_accepts_declared_moves_and_explains_refusals() -> None:
    assert check_transition(Status.RUNNING, Status.STOPPING).accepted
    verdict = check_transition(Status.STOPPED, Status.PAUSING)
    assert not verdict.accepted
    assert "stopped may move to" in verdict.reason
    assert "pausing" in verdict.reason


def test_no_status_moves_to_itself() -> None:
    for status in Status:
        assert not check_transition(status, status).accepted


def test_exports_carry_the_whole_table() -> None:
    as_json = json.loads(json.dumps(transitions_as_json()))
    assert as_json["stopped"] == ["removing", "starting"]
    mermaid = transitions_as_mermaid()
    assert mermaid.startswith("stateDiagram-v2")
    edges = sum(len(v) for v in TRANSITIONS.values())
    assert mermaid.count("-->") == edges


def test_require_transition_passes_allowed_moves_and_raises_on_refused_ones() -> None:
    require_transition(Status.RUNNING, Status.STOPPING)
    with pytest.raises(InvalidTransition) as refused:
        require_transition(Status.STOPPED, Status.PAUSING)
    assert refused.value.reason == check_transition(Status.STOPPED, Status.PAUSING).reason
