"""`runplane runtime describe`: what its "Last error" is made of, and its sections."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from runplane.cli.output import Format
from runplane.cli.runtime_describe import last_error, show_description

RUNTIME = {
    "runtime_id": "rt-1",
    "team_id": "a",
    "status": "running",
    "engine_health": "healthy",
    "created_at": "2026-01-01T00:00:00Z",
}
HEALTH = {
    "runtime_id": "rt-1",
    "status": "engine_unreachable",
    "engine_health": "exited",
    "snapshot": {
        "event_type": "container_exited",
        "summary": "exited",
        "container_id": "p-1",
        "observed_at": "2026-01-01T00:01:00Z",
        "details": {"exit_code": 137},
    },
    "events": [],
}


def operation(op: str, outcome: str, code: str | None = None) -> dict[str, Any]:
    return {
        "operation_id": f"op-{op}",
        "op": op,
        "op_source": "rest",
        "outcome": outcome,
        "error_code": code,
        "error_message": "it went wrong" if code else "",
        "status_from": "running",
        "status_to": "running",
        "reason": "",
        "actor": "key_1",
        "job_id": None,
        "finished_at": "2026-01-01T00:02:00Z",
    }


def test_a_healthy_runtime_with_only_successes_has_no_last_error() -> None:
    assert last_error(RUNTIME, [operation("start", "success")], HEALTH) is None


def test_the_newest_failed_operation_is_the_last_error() -> None:
    ops = [operation("stop", "success"), operation("pause", "failure", "invalid_state")]
    error = last_error(RUNTIME, ops, HEALTH)
    assert error is not None
    assert error["operation"]["op"] == "pause"
    assert error["health"] is None  # status running, health healthy: no health problem


def test_a_bad_status_or_health_brings_the_latest_health_event() -> None:
    broken = {**RUNTIME, "status": "engine_unreachable", "engine_health": "exited"}
    error = last_error(broken, [operation("start", "success")], HEALTH)
    assert error == {
        "operation": None,
        "health": {
            "status": "engine_unreachable",
            "engine_health": "exited",
            "event_type": "container_exited",
            "observed_at": "2026-01-01T00:01:00Z",
            "details": {"exit_code": 137},
        },
    }


def described() -> dict[str, Any]:
    broken = {**RUNTIME, "status": "engine_unreachable", "engine_health": "exited"}
    ops = [operation("pause", "failure", "invalid_state")]
    return {
        "runtime": broken,
        "last_error": last_error(broken, ops, HEALTH),
        "health": HEALTH,
        "operations": ops,
        "events": [],
    }


def test_the_table_has_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    show_description(described(), Format.TABLE)
    shown = capsys.readouterr().out
    for part in ("Last error:", "Health:", "Operations (newest 10):", "Events (last 10):"):
        assert part in shown
    assert "pause failure (invalid_state" in shown
    assert "engine_unreachable, health exited: container_exited" in shown
    assert "Events (last 10):\n  none" in shown


def test_yaml_is_the_same_document(capsys: pytest.CaptureFixture[str]) -> None:
    show_description(described(), Format.YAML)
    assert yaml.safe_load(capsys.readouterr().out) == described()
