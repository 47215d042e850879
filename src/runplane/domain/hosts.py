"""Hosts: the machines runtimes live on (DESIGN §9), their statuses and the
moves between them, as data.

A host has two things an operator cares about, kept apart:

- **`status`**, what the host is now: `up`, `down`, `draining`, `cordoned`.
  The one field placement, the API and the events speak of.
- **`admin_status`**, what an admin last asked of it: `up` (schedulable),
  `draining` or `cordoned`. It survives a host's loss: a cordoned host that
  goes down and heartbeats again comes back `cordoned`, not `up`.

Heartbeats decide only between `down` and the admin status; admins decide only
between `up`, `draining` and `cordoned`, and only while the host is not down
(a down host's runtimes are host loss's business; see `ADMIN_MOVES`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from runplane.domain.errors import RunplaneError


class HostStatus(StrEnum):
    UP = "up"
    DOWN = "down"
    DRAINING = "draining"
    CORDONED = "cordoned"


ADMIN_STATUSES: frozenset[HostStatus] = frozenset(
    {HostStatus.UP, HostStatus.DRAINING, HostStatus.CORDONED}
)
"""What an admin may ask a host to be; `down` is never asked for, only observed."""

HOST_TRANSITIONS: Mapping[HostStatus, frozenset[HostStatus]] = {
    # Missed heartbeats take any live host down; an admin moves it among the rest.
    HostStatus.UP: frozenset({HostStatus.DOWN, HostStatus.DRAINING, HostStatus.CORDONED}),
    # Draining -> cordoned is also where a finished drain will land (next: moving runtimes).
    HostStatus.DRAINING: frozenset({HostStatus.DOWN, HostStatus.CORDONED, HostStatus.UP}),
    HostStatus.CORDONED: frozenset({HostStatus.DOWN, HostStatus.DRAINING, HostStatus.UP}),
    # A heartbeat brings a down host back, to its admin status only (see below).
    HostStatus.DOWN: frozenset({HostStatus.UP, HostStatus.DRAINING, HostStatus.CORDONED}),
}
"""Every status move a host store accepts, with one more rule
(`require_host_transition`): a host that is not `down` has the status its admin
asked for (`status == admin_status`). So a move to `down` keeps the admin
status; a move out of `down` lands on it (a cordoned host comes back cordoned,
never `up`); an admin move sets both. A move to the same status is no move."""


class HostAction(StrEnum):
    DRAIN = "drain"
    CORDON = "cordon"
    UNCORDON = "uncordon"


ADMIN_MOVES: Mapping[HostAction, HostStatus] = {
    HostAction.DRAIN: HostStatus.DRAINING,
    HostAction.CORDON: HostStatus.CORDONED,
    HostAction.UNCORDON: HostStatus.UP,
}
"""The status (and admin status) each admin action asks for. From a `down`
host every action is refused (`invalid_state`): nothing there can be moved or
kept from work, and whatever it was last set to it comes back as. Asking for
the status a host already has changes nothing (an idempotent answer)."""


class InvalidHostTransition(RunplaneError):
    def __init__(self, current: HostStatus, target: HostStatus, why: str = "") -> None:
        because = f": {why}" if why else ""
        super().__init__(f"a host cannot move from {current} to {target}{because}")
        self.current = current
        self.target = target


class HostConflict(RunplaneError):
    """A host's compare-and-set matched no row: its status or version moved,
    or it heartbeated after the cut-off the change expected."""

    def __init__(self, host_id: str) -> None:
        super().__init__(f"host {host_id!r} changed meanwhile")
        self.host_id = host_id


class NoHostAvailable(RunplaneError):
    """No host can take a runtime (none up with its driver, its labels, room)."""


class HostAlreadyExists(RunplaneError):
    def __init__(self, host_id: str) -> None:
        super().__init__(f"host {host_id!r} already exists")
        self.host_id = host_id


def require_host_transition(
    current: HostStatus, target: HostStatus, admin_status: HostStatus
) -> None:
    """Raise InvalidHostTransition unless `current -> target` is in the table and
    `target` is `down` or the host's admin status."""
    if target not in HOST_TRANSITIONS[current]:
        raise InvalidHostTransition(current, target)
    if target is not HostStatus.DOWN and target is not admin_status:
        raise InvalidHostTransition(current, target, f"its admin status is {admin_status}")


HOST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
HOST_ID_RULE = "1-128 characters of [A-Za-z0-9._-], starting with a letter or digit"
LABEL_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_DRIVERS = 16
MAX_ADDRESS = 512


def is_valid_host_id(host_id: str) -> bool:
    return bool(HOST_ID_PATTERN.fullmatch(host_id))


class InvalidHost(RunplaneError):
    """A host id, label or capacity that breaks the rules below."""


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels are a bounded string map: at most 32, keys like `zone` or
    `example.com/gpu`, values up to 256 printable characters."""
    if len(labels) > MAX_LABELS:
        raise InvalidHost(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_PATTERN.fullmatch(key):
            raise InvalidHost(f"label key {key!r} must match {LABEL_KEY_PATTERN.pattern}")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE or not value.isprintable():
            raise InvalidHost(f"label {key!r}: up to {MAX_LABEL_VALUE} printable characters")
    return dict(labels)


def parse_labels(text: str) -> dict[str, str]:
    """`zone=a,gpu=false` (RUNPLANE_HOST_LABELS, `?label=k=v`) as a checked map."""
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals:
            raise InvalidHost(f"label {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return check_labels(labels)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a host offers; None: not limited (or not known)."""

    cpus: float | None = None
    memory_mb: int | None = None
    max_runtimes: int | None = None

    def __post_init__(self) -> None:
        for name in ("cpus", "memory_mb", "max_runtimes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidHost(f"capacity {name} must be positive, not {value!r}")


@dataclass(frozen=True, slots=True)
class Host:
    host_id: str
    address: str
    status: HostStatus
    admin_status: HostStatus
    version: int
    registered_at: datetime
    last_heartbeat_at: datetime
    labels: dict[str, str] = field(default_factory=dict)
    capacity: Capacity = field(default_factory=Capacity)
    drivers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not is_valid_host_id(self.host_id):
            raise InvalidHost(f"host_id must be {HOST_ID_RULE}")
        if len(self.address) > MAX_ADDRESS:
            raise InvalidHost(f"address: at most {MAX_ADDRESS} characters")
        if self.admin_status not in ADMIN_STATUSES:
            raise InvalidHost(f"admin_status {self.admin_status} is not one an admin sets")
        if len(self.drivers) > MAX_DRIVERS:
            raise InvalidHost(f"at most {MAX_DRIVERS} drivers")
        check_labels(self.labels)

    def heartbeat_missed(self, now: datetime, down_after: timedelta) -> bool:
        """The rule: a host is down once its last heartbeat is older than
        `down_after` (RUNPLANE_HOST_DOWN_AFTER_S)."""
        return now - self.last_heartbeat_at > down_after

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in labels.items())


@dataclass(frozen=True, slots=True)
class HostStatusChange:
    """A compare-and-set of one host: from (expected_status, expected_version)
    to `status` (and `admin_status`). A store also expects, for a move out of
    `down`, the stored admin status to be `status`. `heartbeat_before`, when set, also needs
    the host's last heartbeat older than it: a heartbeat that lands between the
    monitor's read and its write wins, and the host is not marked down."""

    host_id: str
    expected_status: HostStatus
    expected_version: int
    status: HostStatus
    admin_status: HostStatus
    at: datetime
    heartbeat_before: datetime | None = None

    def __post_init__(self) -> None:
        if self.admin_status not in ADMIN_STATUSES:
            raise InvalidHost(f"admin_status {self.admin_status} is not one an admin sets")
        require_host_transition(self.expected_status, self.status, self.admin_status)


@dataclass(frozen=True, slots=True)
class Registration:
    """What `HostStore.register` did: the stored host, and whether it was new."""

    host: Host
    created: bool


HOST_UP = "host.up"
HOST_DOWN = "host.down"
HOST_EVENT_TYPES: frozenset[str] = frozenset({HOST_UP, HOST_DOWN})
