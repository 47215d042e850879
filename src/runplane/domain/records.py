"""The runtime record, the status change a store applies, and the operation-log entry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum, auto
from typing import Any, TypedDict

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.statuses import Status, require_transition

RUNTIME_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
"""DESIGN §2's characters, starting with a letter or digit: never `.` or `..`,
which would name a directory wherever an id becomes a path."""
RUNTIME_ID_RULE = "1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit"


def is_valid_runtime_id(runtime_id: str) -> bool:
    return bool(RUNTIME_ID_PATTERN.fullmatch(runtime_id))


@dataclass(frozen=True, slots=True)
class RuntimeRecord:
    runtime_id: str
    team_id: str
    status: Status
    version: int
    driver: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    container_id: str | None = None
    engine_endpoint: str | None = None
    engine_health: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    removed_at: datetime | None = None
    last_op_at: datetime | None = None
    status_deadline: datetime | None = None
    host_id: str | None = None
    """The host the runtime was placed on (DESIGN §9); None until placement records it."""
    labels: dict[str, str] = field(default_factory=dict)
    timeout_at: datetime | None = None
    """When `on_timeout` fires (domain/runtime_settings.py); None: no timeout."""
    on_timeout: str | None = None
    idle_after_s: int | None = None
    """Idle for this long (no connection, no activity): `idle_action` fires."""
    idle_action: str | None = None
    active_at: datetime | None = None
    """Last seen busy: a connection open on its host, or `POST .../activity`."""


class Keep(Enum):
    """A StatusChange field at `Keep.KEEP` leaves the record's value as it is;
    None sets the column to NULL."""

    KEEP = auto()


class ChangeFields(TypedDict, total=False):
    """The record fields an operation may set with a status change; the ones
    left out keep their value. (The status deadline the operation sets itself.)"""

    container_id: str | None
    engine_endpoint: str | None
    engine_health: str | None
    spec: dict[str, Any]
    started_at: datetime | None
    stopped_at: datetime | None
    removed_at: datetime | None
    host_id: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A compare-and-swap: move `runtime_id` from (expected_status, expected_version
    [, expected_container_id]) to `status`, setting the given fields. Zero matching
    rows is a conflict, never an overwrite. Fields at `Keep.KEEP` keep their value;
    `expected_container_id` at KEEP leaves the container unchecked.

    The transition table (`require_transition`) is checked twice, on purpose,
    and both raise InvalidTransition:

    - here, when the change is built (`dataclasses.replace` included): a move
      the table refuses cannot be expressed, and its author hears at once, before
      any driver call or write;
    - by every RuntimeStore, before it writes: the store is the one place every
      status write passes, so a change that reached it without this constructor
      (fields set with `object.__setattr__`, a future writer of its own) is
      refused there too, with nothing written.

    Checking `expected_status -> status` is checking the record's own status:
    the CAS writes nothing unless the row is in `expected_status`."""

    runtime_id: str
    expected_status: Status
    expected_version: int
    status: Status
    at: datetime
    expected_container_id: str | Keep | None = Keep.KEEP
    container_id: str | Keep | None = Keep.KEEP
    engine_endpoint: str | Keep | None = Keep.KEEP
    engine_health: str | Keep | None = Keep.KEEP
    spec: dict[str, Any] | Keep = Keep.KEEP
    started_at: datetime | Keep | None = Keep.KEEP
    stopped_at: datetime | Keep | None = Keep.KEEP
    removed_at: datetime | Keep | None = Keep.KEEP
    status_deadline: datetime | Keep | None = Keep.KEEP
    host_id: str | Keep | None = Keep.KEEP

    def __post_init__(self) -> None:
        require_transition(self.expected_status, self.status)

    def updated_fields(self) -> dict[str, Any]:
        """The record columns this change writes, `status` and timestamps included."""
        names = (
            "container_id",
            "engine_endpoint",
            "engine_health",
            "spec",
            "started_at",
            "stopped_at",
            "removed_at",
            "status_deadline",
            "host_id",
        )
        values = {name: getattr(self, name) for name in names}
        values = {k: v for k, v in values.items() if v is not Keep.KEEP}
        values.update(
            status=self.status,
            version=self.expected_version + 1,
            updated_at=self.at,
            last_op_at=self.at,
        )
        return values

    @property
    def checks_container(self) -> bool:
        return self.expected_container_id is not Keep.KEEP


def apply_change(record: RuntimeRecord, change: StatusChange) -> RuntimeRecord:
    """What a record looks like after `change`: used by stores and fakes alike."""
    return replace(record, **change.updated_fields())


@dataclass(frozen=True, slots=True)
class OperationEntry:
    """One line of the operation log. Every operation call writes exactly one."""

    operation_id: str
    runtime_id: str
    op: OpKind
    op_source: OpSource
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    team_id: str | None = None
    error_code: ErrorCode | None = None
    error_message: str = ""
    job_id: str | None = None
    source_ref: str = ""
    reason: str = ""
    status_from: Status | None = None
    status_to: Status | None = None
    container_id: str | None = None
    actor: str = ""
    details: dict[str, Any] = field(default_factory=dict)
