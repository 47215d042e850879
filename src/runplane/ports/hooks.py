"""What the hooks listing reads: the consumer groups of the events stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GroupState:
    """One consumer group of a stream, as Redis reports it (XINFO GROUPS)."""

    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    lag: int | None
    """Entries not yet delivered to the group; None when Redis cannot tell."""


class GroupStates(Protocol):
    async def groups(self, stream: str) -> Sequence[GroupState]:
        """Every group of `stream`; raises StoreUnavailable if Redis is down."""
