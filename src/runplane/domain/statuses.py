"""Runtime statuses and the transition table: the only gate for a status write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from runplane.domain.errors import RunplaneError


class Status(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    RESTARTING = "restarting"
    PATCHING = "patching"
    REMOVING = "removing"
    REMOVED = "removed"
    ENGINE_UNREACHABLE = "engine_unreachable"
    ERROR = "error"


TRANSIENT: frozenset[Status] = frozenset(
    {
        Status.STARTING,
        Status.STOPPING,
        Status.PAUSING,
        Status.RESUMING,
        Status.RESTARTING,
        Status.PATCHING,
        Status.REMOVING,
    }
)
PERSISTENT: frozenset[Status] = frozenset(Status) - TRANSIENT

_S = Status

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    _S.PENDING: frozenset({_S.STARTING}),
    _S.STARTING: frozenset({_S.RUNNING, _S.ERROR}),
    _S.RUNNING: frozenset(
        {_S.STOPPING, _S.PAUSING, _S.RESTARTING, _S.PATCHING, _S.ENGINE_UNREACHABLE}
    ),
    _S.STOPPING: frozenset({_S.STOPPED, _S.REMOVED, _S.ERROR}),
    _S.PAUSING: frozenset({_S.PAUSED, _S.RUNNING}),
    _S.PAUSED: frozenset({_S.RESUMING, _S.STOPPING, _S.REMOVING}),
    _S.RESUMING: frozenset({_S.RUNNING, _S.PAUSED}),
    _S.RESTARTING: frozenset({_S.RUNNING, _S.ERROR}),
    _S.PATCHING: frozenset({_S.RUNNING, _S.ERROR}),
    _S.ENGINE_UNREACHABLE: frozenset({_S.RUNNING, _S.STOPPING, _S.RESTARTING, _S.REMOVING}),
    _S.STOPPED: frozenset({_S.STARTING, _S.REMOVING}),
    _S.ERROR: frozenset({_S.STARTING, _S.STOPPING, _S.REMOVING}),
    _S.REMOVING: frozenset({_S.REMOVED}),
    _S.REMOVED: frozenset({_S.STARTING}),
}
"""FROM -> allowed TO. Declared as data so it can be exported, tested and reviewed."""


@dataclass(frozen=True, slots=True)
class TransitionVerdict:
    """The gate's answer: accepted, or rejected with a reason a person can read."""

    accepted: bool
    reason: str = ""


class InvalidTransition(RunplaneError):
    """A status change the transition table does not allow, refused before
    anything is written. A caller's bug, not an outcome: a lifecycle operation
    that meets it answers `invalid_state` with `reason`."""

    def __init__(self, current: Status, target: Status, reason: str) -> None:
        super().__init__(reason)
        self.current = current
        self.target = target
        self.reason = reason


def check_transition(current: Status, target: Status) -> TransitionVerdict:
    """The table's answer for one move, without acting on it."""
    if target in TRANSITIONS[current]:
        return TransitionVerdict(True)
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
    return TransitionVerdict(False, f"{current} may move to {allowed}, not to {target}")


def require_transition(current: Status, target: Status) -> None:
    """The gate: raise InvalidTransition unless the table allows `current ->
    target`. StatusChange passes it when built and every RuntimeStore before it
    writes, so no caller checks for itself."""
    verdict = check_transition(current, target)
    if not verdict.accepted:
        raise InvalidTransition(current, target, verdict.reason)


def transitions_as_json() -> dict[str, list[str]]:
    return {str(src): sorted(str(dst) for dst in dsts) for src, dsts in TRANSITIONS.items()}


def transitions_as_mermaid() -> str:
    lines = ["stateDiagram-v2"]
    for src, dsts in TRANSITIONS.items():
        lines.extend(f"    {src} --> {dst}" for dst in sorted(dsts))
    return "\n".join(lines)
