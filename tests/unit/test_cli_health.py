"""`runplane runtime health`'s rendering of GET /v1/runtimes/{id}/health."""

from __future__ import annotations

import pytest

from runplane.cli.health import show_health


def test_health_shows_summary_latest_event_and_recent_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_health(
        {
            "runtime_id": "rt-1",
            "status": "engine_unreachable",
            "engine_health": "exited",
            "snapshot": {
                "event_type": "container_exited",
                "summary": "exited",
                "container_id": "p-1-2",
                "observed_at": "2025-01-01T00:00:01.234567Z",
                "details": {"exit_code": 137, "signal": 9, "detail": ""},
            },
            "events": [
                {
                    "event_type": "container_exited",
                    "container_id": "p-1-2",
                    "occurred_at": "2025-01-01T00:00:01.234567Z",
                    "details": {"exit_code": 137, "signal": 9},
                },
                {
                    "event_type": "container_started",
                    "container_id": "p-1-2",
                    "occurred_at": "2025-01-01T00:00:00Z",
                    "details": {},
                },
            ],
        }
    )
    shown = capsys.readouterr().out
    assert "rt-1 is engine_unreachable, health: exited" in shown
    assert "latest: container_exited at 2025-01-01 00:00:01.234" in shown
    assert '"exit_code": 137' in shown
    assert "container_started" in shown


def test_a_runtime_without_events_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    show_health({"runtime_id": "rt-1", "status": "running", "engine_health": None, "events": []})
    shown = capsys.readouterr().out
    assert "rt-1 is running, health: -" in shown
    assert "no recent health events" in shown
