"""Offset mode: XREAD from a position kept in an OffsetStore.

For readers that must see every entry but need no group (a relay, an SSE
feed). The position advances only past entries that were handled (or
dead-lettered), after the batch: a crash re-reads from the last saved
position. Without a group there is no pending list to retry from, so an entry
whose handler fails is retried in-process, with backoff, up to
`max_deliveries` times; then it is dead-lettered and passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import takewhile
from typing import Any

import redis.asyncio

from runplane.domain.backoff import backoff_delay_s
from runplane.ports.streams import OffsetStore
from runplane.streams.batch import Outcome, Status, call_handler
from runplane.streams.entries import StreamEntry, decode_entry, decode_text
from runplane.streams.handler import Handler, KeyFunc, by_runtime_id
from runplane.streams.loop import ConsumerLoop
from runplane.streams.settings import ConsumerSettings

logger = logging.getLogger(__name__)

FROM_START = "0"
FROM_NOW = "$"


class OffsetConsumer(ConsumerLoop):
    """Reads `stream` for `consumer` (the OffsetStore key), from the saved
    position, or from `initial_id` when none is saved: "0" (everything) or "$"
    (entries added after the first read), or an entry id."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        offsets: OffsetStore,
        *,
        stream: str,
        consumer: str,
        handler: Handler,
        settings: ConsumerSettings,
        key_of: KeyFunc = by_runtime_id,
        initial_id: str = FROM_START,
    ) -> None:
        super().__init__(client, stream=stream, handler=handler, settings=settings, key_of=key_of)
        if not consumer:
            raise ValueError("consumer name must not be empty")
        self._offsets = offsets
        self.consumer = consumer
        self._initial_id = initial_id
        self._position: str | None = None

    def __repr__(self) -> str:
        return f"OffsetConsumer({self.stream!r}, consumer={self.consumer!r})"

    @property
    def position(self) -> str | None:
        """The id of the last entry passed (None before the first read)."""
        return self._position

    async def _read(self) -> list[StreamEntry]:
        if self._position is None:
            self._position = await self._start_position()
        position = self._position
        reply: Any = await self._parked.read(
            lambda: self._client.xread(
                {self.stream: position},
                count=self.settings.batch_size,
                block=self.settings.block_ms,
            )
        )
        if not reply:
            return []
        return [decode_entry(self.stream, i, f) for i, f in reply[0][1]]

    async def _start_position(self) -> str:
        saved = await self._offsets.load(self.consumer, self.stream)
        if saved:
            return saved
        if self._initial_id != FROM_NOW:
            return self._initial_id
        # "$" is resolved once: re-sent on every XREAD it would skip whatever
        # arrived between two reads.
        newest: Any = await self._client.xrevrange(self.stream, "+", "-", count=1)
        return decode_text(newest[0][0])[0] if newest else "0-0"

    async def _attempt(self, entry: StreamEntry) -> Outcome:
        max_deliveries = self.settings.max_deliveries
        for delivery in range(1, max_deliveries + 1):
            current = entry._replace(deliveries=delivery)
            self._counters.consumed.inc()
            error = await call_handler(self._handler, current, self.settings.handler_timeout_s)
            if error is None:
                return Outcome(current, Status.DONE)
            self._counters.failed.inc()
            if delivery == max_deliveries:
                return Outcome(current, Status.DEAD, error)
            delay_s = backoff_delay_s(
                delivery, base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_cap_s
            )
            if await self._sleep(delay_s):
                return Outcome(current, Status.SKIPPED, error)  # stopping: not passed
        raise AssertionError("unreachable: the last delivery returns")

    async def _settle(self, outcomes: Sequence[Outcome]) -> None:
        """Pass the longest settled prefix: the position never skips an entry
        that was not handled, even when later ones were."""
        passed = list(takewhile(lambda o: o.settled, outcomes))
        if not passed:
            return
        dead = [o for o in passed if o.status is Status.DEAD]
        if dead:
            async with self._client.pipeline(transaction=False) as pipe:
                for outcome in dead:
                    self._queue_dead_letter(pipe, outcome)
                await pipe.execute()
            for outcome in dead:
                self._report_dead_letter(outcome)
        last_id = passed[-1].entry.entry_id
        await self._offsets.save(self.consumer, self.stream, last_id)
        self._position = last_id
        self._counters.acknowledged.inc(len(passed))
