"""Dead letters: stream entries that failed past their delivery cap."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.domain.errors import RunplaneError


class DeadLetterNotFound(RunplaneError):
    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter {dead_letter_id!r}")
        self.dead_letter_id = dead_letter_id


class DeadLetterUnreplayable(RunplaneError):
    """The dead letter lacks a stream or fields to add back."""

    def __init__(self, dead_letter_id: str, why: str) -> None:
        super().__init__(f"dead letter {dead_letter_id!r} cannot be replayed: {why}")
        self.dead_letter_id = dead_letter_id


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    """The dead letter's own entry id in the dead-letter stream."""
    stream: str
    entry_id: str
    fields: dict[str, str]
    error: str
    deliveries: int
