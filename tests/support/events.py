"""Lifecycle events for tests: envelopes built by the domain (so CloudEvents
parses them). The in-memory EventReader is runplane.testing.event_stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from runplane.domain.lifecycle_events import Actor, LifecycleEvent

MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def lifecycle_event(
    n: int,
    *,
    type: str = "runtime.start",
    runtime_id: str = "rt-1",
    team_id: str = "team-a",
    status_from: str = "starting",
    status_to: str = "running",
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"evt-{n}",
        type=type,
        runtime_id=runtime_id,
        time=MOMENT,
        sequence=n,
        outcome="success",
        team_id=team_id,
        actor=Actor("system", "runplane", "runplane"),
        source="/runplane/test",
        status_from=status_from,
        status_to=status_to,
        metadata={"n": str(n)},
    )


def envelope(n: int, **changes: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(lifecycle_event(n, **changes).to_json())
    return parsed
