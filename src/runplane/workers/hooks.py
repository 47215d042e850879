"""One extension hook's consumer: every durable lifecycle event, at least once.

Each hook has a consumer group of its own on `runplane:events`, so a slow or
failing hook delays nobody else (not the webhooks, not another hook). Within
one delivery a failing hook is tried again with backoff; when every attempt
of a delivery failed the entry stays pending and is delivered again once its
claim time passes (on this instance or another); past the group's
`max_deliveries` it goes to the dead letters (docs/hooks.md)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram

from runplane.domain.backoff import backoff_delay_s
from runplane.domain.documents import InvalidDocument, loads
from runplane.domain.hooks import Hook
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.streams import RetryLater
from runplane.streams.entries import StreamEntry

logger = logging.getLogger(__name__)

HOOK_CALLS = Counter(
    "runplane_hook_calls",
    "Extension hook calls by outcome: ok, failed (raised or timed out).",
    ["hook", "outcome"],
)
HOOK_SECONDS = Histogram("runplane_hook_seconds", "Time of successful hook calls.", ["hook"])
HOOK_SKIPPED = Counter(
    "runplane_hook_skipped",
    "Entries of the events stream that are no event (malformed): acknowledged unseen.",
    ["hook"],
)


def event_of(entry: StreamEntry) -> dict[str, Any] | None:
    """The entry's envelope, or None when it holds none a hook could use."""
    raw = entry.fields.get(EVENT_FIELD)
    if raw is None or entry.undecodable:
        return None
    try:
        event = loads(raw)
    except InvalidDocument:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return None
    return event


def by_subject(entry: StreamEntry) -> str:
    """Events of one runtime (or host) reach a hook in stream order."""
    event = event_of(entry)
    subject = event.get("subject") if event is not None else None
    return subject if isinstance(subject, str) and subject else entry.entry_id


class HookRunner:
    """The handler of one hook's consumer group."""

    def __init__(
        self,
        name: str,
        hook: Hook,
        *,
        attempts: int,
        timeout_s: float,
        backoff_base_s: float,
        backoff_cap_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.hook = hook
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        # A plain function runs in a thread: a hook that writes a file or calls
        # a billing API synchronously must not stall the event loop.
        self._is_coroutine = inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
            getattr(hook, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    async def __call__(self, entry: StreamEntry) -> None:
        event = event_of(entry)
        if event is None:
            HOOK_SKIPPED.labels(self.name).inc()
            logger.warning(
                "events stream entry is no event; hook skips it",
                extra={"hook": self.name, "entry_id": entry.entry_id},
            )
            return
        for attempt in range(1, self.attempts + 1):
            error = await self._try(event)
            if error is None:
                return
            HOOK_CALLS.labels(self.name, "failed").inc()
            logger.warning(
                "hook failed",
                extra={
                    "hook": self.name,
                    "event_id": event["id"],
                    "entry_id": entry.entry_id,
                    "attempt": attempt,
                    "delivery": entry.deliveries,
                    "error": error,
                },
            )
            if attempt < self.attempts:
                await self._sleep(
                    backoff_delay_s(attempt, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)
                )
        raise RetryLater(f"hook {self.name} failed {self.attempts} times: {error}")

    async def _try(self, event: dict[str, Any]) -> str | None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._is_coroutine:
                    await self.hook(event)  # type: ignore[misc]
                else:
                    result = await asyncio.to_thread(self.hook, event)
                    if inspect.isawaitable(result):
                        await result
        except TimeoutError:
            return f"timed out after {self.timeout_s:g} s"
        except Exception as exc:  # the hook's own failure, whatever it is
            return f"{type(exc).__name__}: {exc}"[:500]
        HOOK_CALLS.labels(self.name, "ok").inc()
        HOOK_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        return None
