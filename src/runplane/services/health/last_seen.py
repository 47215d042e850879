"""What the health events consumer last knew of each runtime's record.

Repeats are the bulk of health events (an observation reported again, an
engine's event stream replayed after a reconnect). Remembering each runtime's
record as the consumer last read or wrote it lets an event that changes
nothing on it be passed over without a database round trip.

Operations change records behind the consumer's back, so what is remembered
is trusted only for `trust_s` after it was read (or written); past that the
next event reads the record again. Only a settled record is remembered: one in
a transient status belongs to the operation in flight, which is about to
change it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import TRANSIENT
from runplane.ports.system import Clock

DEFAULT_TRUST_S = 1.0
"""About one health-monitor round: a staler view than the monitor's own."""


@dataclass(frozen=True, slots=True)
class _Seen:
    record: RuntimeRecord
    at: datetime


class LastSeen:
    def __init__(self, clock: Clock, *, trust_s: float = DEFAULT_TRUST_S) -> None:
        if trust_s < 0:
            raise ValueError(f"trust_s must not be negative, not {trust_s}")
        self.clock = clock
        self.trust = timedelta(seconds=trust_s)
        self._seen: dict[str, _Seen] = {}

    def recall(self, runtime_id: str) -> RuntimeRecord | None:
        """The runtime's record as last seen, if seen less than `trust_s` ago."""
        seen = self._seen.get(runtime_id)
        if seen is None:
            return None
        age = self.clock.now() - seen.at
        if age < timedelta(0) or age >= self.trust:  # a clock set back trusts nothing
            del self._seen[runtime_id]
            return None
        return seen.record

    def note(self, record: RuntimeRecord) -> None:
        """`record` was just read or written; a transient one is not kept."""
        if record.status in TRANSIENT:
            self.forget(record.runtime_id)
        else:
            self._seen[record.runtime_id] = _Seen(record, self.clock.now())

    def forget(self, runtime_id: str) -> None:
        self._seen.pop(runtime_id, None)
