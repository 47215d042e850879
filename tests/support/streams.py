"""Helpers for stream consumer tests: fast settings, a recording handler, a
consumer running in the background, and polling."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import REGISTRY

from runplane.adapters.redis.names import DEAD_LETTER_STREAM
from runplane.streams import ConsumerSettings, StreamEntry
from runplane.streams.loop import ConsumerLoop

FAST = ConsumerSettings(
    dead_letter_stream=DEAD_LETTER_STREAM,
    batch_size=16,
    block_ms=100,
    claim_idle_ms=200,
    claim_interval_s=0.1,
    backoff_base_s=0.02,
    backoff_cap_s=0.2,
    metrics_interval_s=0.1,
    trim_interval_s=0.1,
)


def fast(**changes: Any) -> ConsumerSettings:
    return replace(FAST, **changes)


def unique(prefix: str = "test") -> str:
    """A stream (or group) name no other test uses."""
    return f"{prefix}:{uuid.uuid4().hex[:10]}"


def sample(metric: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


HANG_SLACK = 4
"""Bounds on waits are against hangs, never measurements: CI shares its machine,
so a wait gets this many times its nominal bound before it fails."""


async def wait_until(condition: Callable[[], object], *, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s * HANG_SLACK
    while True:
        outcome = condition()  # truthy when met; may be awaitable
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


@dataclass
class Call:
    entry: StreamEntry
    started: float
    ended: float = 0.0


@dataclass
class Recorder:
    """A handler that records every call; `behaviour` may sleep or raise."""

    behaviour: Callable[[StreamEntry], Awaitable[None]] | None = None
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, entry: StreamEntry) -> None:
        call = Call(entry, time.monotonic())
        self.calls.append(call)
        try:
            if self.behaviour is not None:
                await self.behaviour(entry)
        finally:
            call.ended = time.monotonic()

    @property
    def entry_ids(self) -> list[str]:
        return [call.entry.entry_id for call in self.calls]


@asynccontextmanager
async def running(consumer: ConsumerLoop) -> AsyncIterator[asyncio.Task[None]]:
    """`consumer.run()` in a task for the block; stopped (gracefully) after it."""
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        await asyncio.wait_for(consumer.stop(), 10)
        await asyncio.wait_for(task, 10)
