"""Job streams: consumer offsets, job results, the job queue and dead letters."""

from __future__ import annotations

from typing import Protocol

from runplane.domain.dead_letters import DeadLetter
from runplane.domain.jobs import JobResult


class OffsetStore(Protocol):
    """Positions of offset-mode stream consumers."""

    async def load(self, consumer: str, stream: str) -> str | None: ...

    async def save(self, consumer: str, stream: str, entry_id: str) -> None: ...


class JobResultPublisher(Protocol):
    async def publish(self, result: JobResult) -> None:
        """Append to the job results stream; raises StoreUnavailable if Redis is down."""


RESULT_SCAN = 100_000
RESULT_MATCHES = 10


class JobQueue(Protocol):
    """Where jobs are submitted: one stream per operation."""

    async def submit(self, op: str, fields: dict[str, str]) -> tuple[str, str]:
        """Append a job entry to the operation's stream; (stream, entry id)."""

    async def results(
        self, job_id: str, *, after: str | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """The entries of the job results stream answering `job_id`, newest
        first, as (entry id, fields): only those after the entry id `after`,
        and at most RESULT_MATCHES of them within the newest RESULT_SCAN
        entries (the read is a scan: `after` keeps it short)."""


class DeadLetterQueue(Protocol):
    """Entries that failed past their delivery cap, for an operator to act on."""

    async def list(self, *, after: str | None = None, count: int = 100) -> list[DeadLetter]: ...

    async def replay(self, dead_letter_id: str) -> str:
        """Put the entry back on its stream; the new entry id. Raises
        DeadLetterNotFound / DeadLetterUnreplayable."""

    async def drop(self, dead_letter_id: str) -> bool: ...
