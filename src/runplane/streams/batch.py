"""Running one batch: per-key order, cross-key concurrency, outcomes as data.

Entries sharing a key (by default the runtime id) form a chain that runs in
stream order; chains run concurrently, at most `max_concurrency` at a time. A
chain stops at an entry that is not settled (it will be delivered again), so a
later entry of the same runtime never overtakes an earlier one in the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from runplane.logs import correlation, entry_correlation_id
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import Handler, KeyFunc, RetryLater

logger = logging.getLogger(__name__)


class Status(StrEnum):
    DONE = "done"
    """The handler returned: acknowledge / advance."""
    GONE = "gone"
    """The entry was deleted from the stream while pending: acknowledge, nothing to run."""
    RETRY = "retry"
    """The handler failed: deliver again later."""
    DEAD = "dead"
    """Failed too often: dead-letter, then acknowledge / advance."""
    SKIPPED = "skipped"
    """Not run (an earlier entry of its chain is unsettled, or the consumer stops)."""


SETTLED = frozenset({Status.DONE, Status.GONE, Status.DEAD})


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: StreamEntry
    status: Status
    error: str = ""

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


Attempt = Callable[[StreamEntry], Awaitable[Outcome]]


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def call_handler(
    handler: Handler, entry: StreamEntry, timeout_s: float | None = None
) -> str | None:
    """Run `handler`; None when it returned, else the error as text. Never raises
    (cancellation aside): a handler's exception is about one entry, not the loop.
    Past `timeout_s` the handler is cancelled and that counts as a failure. Every
    line logged meanwhile carries the entry's job id as its correlation id."""
    with correlation(entry_correlation_id(entry.stream, entry.entry_id, entry.fields)):
        return await _call_handler(handler, entry, timeout_s)


async def _call_handler(
    handler: Handler, entry: StreamEntry, timeout_s: float | None
) -> str | None:
    extra = {"stream": entry.stream, "entry_id": entry.entry_id, "deliveries": entry.deliveries}
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            await handler(entry)
    except RetryLater as exc:
        logger.warning(
            "stream handler asked to retry later", extra={**extra, "error": str(exc)}, exc_info=exc
        )
        return describe(exc)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            logger.error(
                "stream handler timed out", extra={**extra, "timeout_s": timeout_s}, exc_info=exc
            )
            return f"handler timed out after {timeout_s} s"
        # A bug, not an outage: the traceback is what someone needs to fix it.
        logger.exception("stream handler failed unexpectedly", extra=extra)
        return describe(exc)
    return None


def key_for(entry: StreamEntry, key_of: KeyFunc) -> str:
    try:
        return key_of(entry)
    except Exception:
        logger.exception(
            "stream key function failed; entry runs unordered",
            extra={"stream": entry.stream, "entry_id": entry.entry_id},
        )
        return entry.entry_id


def partition(entries: Sequence[StreamEntry], key_of: KeyFunc) -> list[list[int]]:
    """Indices of `entries` grouped by key, each group in stream order, groups in
    the order their first entry appears."""
    chains: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        chains.setdefault(key_for(entry, key_of), []).append(index)
    return list(chains.values())


async def run_batch(
    entries: Sequence[StreamEntry],
    attempt: Attempt,
    *,
    key_of: KeyFunc,
    max_concurrency: int,
) -> list[Outcome]:
    """The outcome of every entry, in the order of `entries`."""
    outcomes: list[Outcome | None] = [None] * len(entries)
    slots = asyncio.Semaphore(max_concurrency)

    async def run_chain(indices: list[int]) -> None:
        async with slots:
            blocked = False
            for index in indices:
                entry = entries[index]
                if blocked:
                    outcomes[index] = Outcome(entry, Status.SKIPPED)
                    continue
                outcome = await attempt(entry)
                outcomes[index] = outcome
                blocked = not outcome.settled

    async with asyncio.TaskGroup() as group:
        for chain in partition(entries, key_of):
            group.create_task(run_chain(chain))
    return [
        o if o is not None else Outcome(e, Status.SKIPPED)
        for o, e in zip(outcomes, entries, strict=True)
    ]
