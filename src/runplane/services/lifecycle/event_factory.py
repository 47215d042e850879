"""Building the lifecycle events an operation commits with its writes."""

from __future__ import annotations

from runplane.domain.lifecycle_events import STATE_CHANGED, Actor, LifecycleEvent
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.services.lifecycle.dependencies import Dependencies

SYSTEM_PREFIX = "system:"
API_KEY_PREFIX = "key_"


def actor_of(actor: str) -> Actor:
    """`key_…` is an API key, `system:reconciler` a part of runplane, anything else a
    user named by the caller."""
    if actor.startswith(API_KEY_PREFIX):
        return Actor("api_key", actor)
    if not actor or actor.startswith(SYSTEM_PREFIX):
        return Actor("system", actor.removeprefix(SYSTEM_PREFIX))
    return Actor("user", actor)


class EventFactory:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def outcome_event(
        self,
        event_type: str,
        record: RuntimeRecord,
        *,
        outcome: str,
        actor: str,
        reason: str,
        status_from: str | None,
        status_to: str | None,
        sequence: int,
        error: tuple[str, str] | None = None,
    ) -> LifecycleEvent:
        return LifecycleEvent(
            id=self.deps.tokens.new_token(),
            type=event_type,
            runtime_id=record.runtime_id,
            time=self.deps.clock.now(),
            sequence=sequence,
            outcome=outcome,
            team_id=record.team_id,
            actor=actor_of(actor),
            source=self.deps.event_source,
            status_from=status_from,
            status_to=status_to,
            reason=reason,
            error={"code": error[0], "message": error[1]} if error else None,
            host_id=record.host_id,
            labels=record.labels,
        )

    def state_changed(
        self, record: RuntimeRecord, change: StatusChange, actor: str
    ) -> LifecycleEvent:
        """The transient event every status change also produces."""
        return self.outcome_event(
            STATE_CHANGED,
            record,
            outcome="success",
            actor=actor,
            reason="",
            status_from=str(change.expected_status),
            status_to=str(change.status),
            sequence=change.expected_version + 1,
        )

    def for_outcome(
        self,
        op: str,
        record: RuntimeRecord | None,
        *,
        status_from: str | None,
        actor: str,
        reason: str,
        outcome: str,
        change: StatusChange | None = None,
        error: tuple[str, str] | None = None,
    ) -> list[LifecycleEvent]:
        """`runtime.<op>` with its outcome, and `runtime.state.changed` when the
        status moves. None for a runtime that does not exist (no team to show it to)."""
        if record is None:
            return []
        events = [
            self.outcome_event(
                f"runtime.{op}",
                record,
                outcome=outcome,
                actor=actor,
                reason=reason,
                status_from=status_from,
                status_to=str(change.status if change else record.status),
                sequence=change.expected_version + 1 if change else record.version,
                error=error,
            )
        ]
        if change is not None:
            events.append(self.state_changed(record, change, actor))
        return events
