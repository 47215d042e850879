"""Settling a runtime stuck in a transient status past its `status_deadline`
(runplane died between an operation's two CAS writes, say): the reconciler
looks at what the driver reports and writes the status that holds.

The decision is data (SETTLEMENTS): a status and what the driver sees give the
status to settle in, whether something must still be done first (finish a stop
or a removal), and whether the interrupted operation's intent holds. The write
is one CAS with one operation-log entry (op = the interrupted operation,
op_source=reconciler, the reason, details {"inferred": true, ...}) and its
lifecycle events, made under the runtime's lease: a runtime whose lease is
held has an operation under way and is left to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.operations import OpKind
from runplane.domain.statuses import Status

_S = Status


class Seen(StrEnum):
    """What the driver reports about the runtime's container."""

    ALIVE = "alive"
    PAUSED = "paused"
    GONE = "gone"


class Finish(StrEnum):
    """What the reconciler still does before writing the settled status."""

    NOTHING = ""
    STOP = "stop"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Settlement:
    to: Status
    intent_held: bool = True
    """False: the interrupted operation failed (its entry is a failure)."""
    finish: Finish = Finish.NOTHING


_A, _P, _G = Seen.ALIVE, Seen.PAUSED, Seen.GONE

SETTLEMENTS: Mapping[tuple[Status, Seen], Settlement] = {
    (_S.STARTING, _A): Settlement(_S.RUNNING),
    (_S.STARTING, _P): Settlement(_S.RUNNING),
    (_S.STARTING, _G): Settlement(_S.ERROR, intent_held=False),
    (_S.STOPPING, _A): Settlement(_S.STOPPED, finish=Finish.STOP),
    (_S.STOPPING, _P): Settlement(_S.STOPPED, finish=Finish.STOP),
    (_S.STOPPING, _G): Settlement(_S.STOPPED),
    (_S.RESTARTING, _A): Settlement(_S.RUNNING),
    (_S.RESTARTING, _P): Settlement(_S.RUNNING),
    (_S.RESTARTING, _G): Settlement(_S.ERROR, intent_held=False),
    (_S.PATCHING, _A): Settlement(_S.RUNNING),
    (_S.PATCHING, _P): Settlement(_S.RUNNING),
    (_S.PATCHING, _G): Settlement(_S.ERROR, intent_held=False),
    (_S.PAUSING, _P): Settlement(_S.PAUSED),
    (_S.PAUSING, _A): Settlement(_S.RUNNING, intent_held=False),
    (_S.PAUSING, _G): Settlement(_S.RUNNING, intent_held=False),
    (_S.RESUMING, _A): Settlement(_S.RUNNING),
    (_S.RESUMING, _P): Settlement(_S.PAUSED, intent_held=False),
    (_S.RESUMING, _G): Settlement(_S.RUNNING),
    (_S.REMOVING, _A): Settlement(_S.REMOVED, finish=Finish.REMOVE),
    (_S.REMOVING, _P): Settlement(_S.REMOVED, finish=Finish.REMOVE),
    (_S.REMOVING, _G): Settlement(_S.REMOVED, finish=Finish.REMOVE),
}
"""(stuck status, what the driver sees) -> how it settles. A runtime found gone
while pausing or resuming settles `running`: the health monitor then reports
its end like any other. Every target is in TRANSITIONS (a test checks)."""

OPERATION_OF: Mapping[Status, OpKind] = {
    _S.STARTING: OpKind.START,
    _S.STOPPING: OpKind.STOP,
    _S.RESTARTING: OpKind.RESTART,
    _S.PATCHING: OpKind.PATCH,
    _S.PAUSING: OpKind.PAUSE,
    _S.RESUMING: OpKind.RESUME,
    _S.REMOVING: OpKind.REMOVE,
}
"""The operation each transient status belongs to: the op of the settle's entry."""

ADOPTING: frozenset[Status] = frozenset({_S.STARTING, _S.RESTARTING, _S.PATCHING})
"""Statuses whose operation may have started a container the record does not
name yet (it is written by the final CAS): the driver's list is searched for a
live one carrying the runtime's id."""


def seen_of(info: ContainerInfo | None) -> Seen:
    if info is None:
        return Seen.GONE
    if info.state is ContainerState.RUNNING:
        return Seen.ALIVE
    if info.state is ContainerState.PAUSED:
        return Seen.PAUSED
    return Seen.GONE


def settlement_for(status: Status, seen: Seen) -> Settlement:
    """KeyError for a status that is not transient."""
    return SETTLEMENTS[(status, seen)]
