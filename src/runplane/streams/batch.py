"""Running one batch: per-key order, cross-key concurrency, outcomes as data.

Entries sharing a key (by default the runtime id) form a chain that runs in
stream order; chains run concurrently, at most `max_concurrency` at a time. A
chain stops at an entry that is not settled (it will be delivered again), so a
later entry of the same runtime never overtakes an earlier one in the batch.

Chains run in workers that take the next chain when done with one. The first
worker is the caller's own task; another is started only when the loop gets
to run something else while chains are waiting, that is when a handler really
waits (I/O, a lock). Handlers that finish without waiting run one after
another in the caller's task, without a task or a context copy per entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import NamedTuple

from runplane.logs import enter_correlation, entry_correlation_id, leave_correlation
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


class Outcome(NamedTuple):
    """What became of one entry (a tuple: one is made per entry)."""

    entry: StreamEntry
    status: Status
    error: str = ""

    @property
    def settled(self) -> bool:
        # DONE first, by identity: an enum's hash is a Python-level call.
        return self.status is Status.DONE or self.status in SETTLED


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
    token = enter_correlation(entry_correlation_id(entry.stream, entry.entry_id, entry.fields))
    deadline: asyncio.Timeout | None = None
    try:
        if timeout_s is None:  # no timeout scope to enter and leave: the default
            await handler(entry)
            return None
        deadline = asyncio.timeout(timeout_s)
        async with deadline:
            await handler(entry)
        return None
    except RetryLater as exc:
        _log_retry(entry, exc)
        return describe(exc)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline is not None and deadline.expired():
            logger.error(
                "stream handler timed out",
                extra={**_log_fields(entry), "timeout_s": timeout_s},
                exc_info=exc,
            )
            return f"handler timed out after {timeout_s} s"
        # A bug, not an outage: the traceback is what someone needs to fix it.
        logger.exception("stream handler failed unexpectedly", extra=_log_fields(entry))
        return describe(exc)
    finally:
        leave_correlation(token)


def _log_fields(entry: StreamEntry) -> dict[str, object]:
    return {"stream": entry.stream, "entry_id": entry.entry_id, "deliveries": entry.deliveries}


def _log_retry(entry: StreamEntry, exc: RetryLater) -> None:
    logger.warning(
        "stream handler asked to retry later",
        extra={**_log_fields(entry), "error": str(exc)},
        exc_info=exc,
    )


def key_for(entry: StreamEntry, key_of: KeyFunc) -> str:
    try:
        return key_of(entry)
    except Exception:
        return _unordered(entry)


def _unordered(entry: StreamEntry) -> str:
    """The key of an entry whose key function failed (called in an except block)."""
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
        try:  # key_for's guard, inline: a call less per entry
            key = key_of(entry)
        except Exception:
            key = _unordered(entry)
        chain = chains.get(key)
        if chain is None:
            chains[key] = [index]
        else:
            chain.append(index)
    return list(chains.values())


async def run_batch(
    entries: Sequence[StreamEntry],
    attempt: Attempt,
    *,
    key_of: KeyFunc,
    max_concurrency: int,
) -> list[Outcome]:
    """The outcome of every entry, in the order of `entries`."""
    run = _BatchRun(entries, attempt, partition(entries, key_of), max_concurrency)
    await run.run()
    return [
        o if o is not None else Outcome(e, Status.SKIPPED)
        for o, e in zip(run.outcomes, entries, strict=True)
    ]


class _BatchRun:
    """The workers of one batch (see the module docstring)."""

    def __init__(
        self,
        entries: Sequence[StreamEntry],
        attempt: Attempt,
        chains: list[list[int]],
        max_concurrency: int,
    ) -> None:
        self.entries = entries
        self.attempt = attempt
        self.chains = deque(chains)
        self.max_helpers = max_concurrency - 1  # the caller's task is a worker too
        self.outcomes: list[Outcome | None] = [None] * len(entries)
        self.helpers: list[asyncio.Task[None]] = []
        self.loop = asyncio.get_running_loop()
        self.call: asyncio.Handle | None = None

    async def run(self) -> None:
        try:
            await self.work()
            if self.helpers:
                await asyncio.gather(*self.helpers)
        except BaseException:
            # A bug or a cancellation: no helper outlives the batch.
            for helper in self.helpers:
                helper.cancel()
            await asyncio.gather(*self.helpers, return_exceptions=True)
            raise
        finally:
            if self.call is not None:
                self.call.cancel()

    async def work(self) -> None:
        entries, outcomes, chains = self.entries, self.outcomes, self.chains
        while chains:
            chain = chains.popleft()
            for index in chain:
                if chains and self.call is None and len(self.helpers) < self.max_helpers:
                    # Runs only when this worker waits: then a helper takes the
                    # next chain, rather than it waiting behind this entry.
                    self.call = self.loop.call_soon(self.add_helper)
                outcome = await self.attempt(entries[index])
                outcomes[index] = outcome
                if outcome.status is not Status.DONE and not outcome.settled:
                    break  # the rest of the chain stays unrun: SKIPPED

    def add_helper(self) -> None:
        self.call = None
        if self.chains and len(self.helpers) < self.max_helpers:
            self.helpers.append(self.loop.create_task(self.work()))
