"""Reading lifecycle events back from the durable stream: the records a reader
returns, stream positions, and the filter every reader applies the same way.
The reader itself is the EventReader port (ports.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runplane.domain.errors import RunplaneError

_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")

ZERO_ID = "0-0"
"""Before every entry: reading after it replays everything the stream retains."""


MAX_ID_PART = 2**64 - 1
"""Both halves of an entry id are unsigned 64-bit integers: Redis refuses more."""


def is_stream_id(value: str) -> bool:
    """`<ms>-<seq>` or `<ms>`, as Redis Streams spell an entry id, within 64 bits."""
    found = _STREAM_ID.fullmatch(value)
    return found is not None and all(int(p or 0) <= MAX_ID_PART for p in found.groups())


def parse_stream_id(value: str) -> tuple[int, int]:
    """The (ms, seq) of an entry id, for ordering; `<ms>` alone is `<ms>-0`.
    Raises ValueError when `value` is not an entry id."""
    found = _STREAM_ID.match(value)
    if found is None:
        raise ValueError(f"not a stream entry id: {value!r}")
    return int(found.group(1)), int(found.group(2) or 0)


def normalize_stream_id(value: str) -> str:
    ms, seq = parse_stream_id(value)
    return f"{ms}-{seq}"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One lifecycle event as the durable stream holds it: its entry id (the
    resume position) and its CloudEvents envelope."""

    entry_id: str
    envelope: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.envelope.get("type", ""))

    @property
    def runtime_id(self) -> str:
        return str(self.envelope.get("subject", ""))

    @property
    def team_id(self) -> str | None:
        data = self.envelope.get("data")
        team = data.get("team_id") if isinstance(data, dict) else None
        return team if isinstance(team, str) else None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader hands out. Empty `types` means every type; a
    `team_id` (a team key's scope) hides every other team's events."""

    types: frozenset[str] = frozenset()
    runtime_id: str | None = None
    team_id: str | None = None

    def matches(self, event: StoredEvent) -> bool:
        if self.types and event.type not in self.types:
            return False
        if self.runtime_id is not None and event.runtime_id != self.runtime_id:
            return False
        return self.team_id is None or event.team_id == self.team_id


@dataclass(frozen=True, slots=True)
class EventPage:
    """Matching events in stream order. `next_cursor` is where the next page
    starts (the last entry looked at), None once the end of the stream was read."""

    events: list[StoredEvent]
    next_cursor: str | None


class EventsTrimmed(RunplaneError):
    """Entries after `after` were trimmed from the stream: resuming there would
    silently skip events, so the reader must start over (resync) instead."""

    def __init__(self, after: str) -> None:
        super().__init__(f"events after {after} are no longer retained")
        self.after = after
