"""Group mode: XREADGROUP with a per-instance consumer name, XACK after handling.

The read order of one step: first (every `claim_interval_s`) XAUTOCLAIM entries
any consumer left idle past `claim_idle_ms` — crashed instances, and this
one's own failed entries, which is how a failed entry is retried; then this
consumer's own pending entries (XREADGROUP from id 0, after a start or an
outage, until there are none); then new entries (XREADGROUP >, blocking).
Delivery counts come from XPENDING; an entry delivered more than
`max_deliveries` times, or whose handler fails on the last allowed delivery,
goes to the dead letters and is acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions

from runplane.streams import metrics
from runplane.streams.batch import Outcome, Status, call_handler, run_batch
from runplane.streams.entries import (
    RawFields,
    StreamEntry,
    decode_entries,
    decode_entry,
    decode_text,
)
from runplane.streams.every import Every
from runplane.streams.handler import Handler, KeyFunc, by_runtime_id
from runplane.streams.loop import TRANSIENT_ERRORS, ConsumerLoop
from runplane.streams.retention import trim
from runplane.streams.settings import ConsumerSettings

logger = logging.getLogger(__name__)

START_OF_PEL = "0"
CLAIM_START = "0-0"


def group_lost(exc: redis.exceptions.ResponseError) -> bool:
    """NOGROUP: the group (or key) is gone (FLUSHALL, a restart without persistence).
    UNBLOCKED ... no longer exists: key or group deleted under a blocked XREADGROUP."""
    message = str(exc)
    return message.startswith("NOGROUP") or (
        message.startswith("UNBLOCKED") and "no longer exists" in message
    )


RawEntry = tuple[bytes, RawFields]


class GroupConsumer(ConsumerLoop):
    """Consumes `stream` as `consumer` in `group`; see the module docstring."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        settings: ConsumerSettings,
        key_of: KeyFunc = by_runtime_id,
    ) -> None:
        super().__init__(client, stream=stream, handler=handler, settings=settings, key_of=key_of)
        if not group or not consumer:
            raise ValueError("group and consumer names must not be empty")
        self.group = group
        self.consumer = consumer
        self._group_ready = False
        self._pel_cursor: str | None = START_OF_PEL  # own pending entries first
        self._claim_cursor: str | None = None
        self._claim_every = Every(settings.claim_interval_s)
        self._trim_every = Every(settings.trim_interval_s)
        self._gauges_every = Every(settings.metrics_interval_s)
        self._fresh = False  # the batch in hand came from XREADGROUP >
        self._consumed = 0  # handed to the handler, not yet counted in Prometheus

    def __repr__(self) -> str:
        return f"GroupConsumer({self.stream!r}, group={self.group!r}, consumer={self.consumer!r})"

    # reading

    async def _read(self) -> list[StreamEntry]:
        self._fresh = False
        if not self._group_ready:
            await self._ensure_group()
        await self._housekeeping()
        if self._claim_cursor is None and self._claim_every.due():
            self._claim_cursor = CLAIM_START
        if self._claim_cursor is not None:
            claimed = await self._claim()
            if claimed:
                return claimed
        if self._pel_cursor is not None:
            return await self._read_own_pending()
        entries = await self._read_new(self.settings.batch_size, self.settings.block_ms)
        self._fresh = True
        if entries and len(entries) < self.settings.batch_size:
            # Redis answers a blocked read right after a pipeline's first XADD:
            # the rest now, or a round added at once runs 1 job, then the rest.
            entries += await self._read_new(self.settings.batch_size - len(entries), None)
        return entries

    async def _read_new(self, count: int, block_ms: int | None) -> list[StreamEntry]:
        reply = await self._parked.read(
            lambda: self._client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        )
        return decode_entries(self.stream, _stream_entries(reply))

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(
                self.stream, self.group, id=self.settings.group_start_id, mkstream=True
            )
            logger.info(
                "consumer group created", extra={"stream": self.stream, "group": self.group}
            )
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):  # exists already: fine
                raise
        self._group_ready = True

    async def _claim(self) -> list[StreamEntry]:
        """One XAUTOCLAIM page; the cursor runs until Redis answers 0-0."""
        reply = await self._client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.settings.claim_idle_ms,
            start_id=self._claim_cursor or CLAIM_START,
            count=self.settings.batch_size,
        )
        # reply[2] lists entries deleted while pending: Redis 7 drops them itself.
        cursor = decode_text(reply[0])[0]
        self._claim_cursor = None if cursor == CLAIM_START else cursor
        return await self._with_deliveries([e for e in reply[1] if e[0] is not None])

    async def _read_own_pending(self) -> list[StreamEntry]:
        """A page of this consumer's pending entries (re-delivered, counted)."""
        reply = await self._client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: self._pel_cursor or START_OF_PEL},
            count=self.settings.batch_size,
        )
        raw = _stream_entries(reply)
        if not raw:
            self._pel_cursor = None  # drained: from now on, new entries
            return []
        self._pel_cursor = decode_text(raw[-1][0])[0]
        return await self._with_deliveries(raw)

    async def _with_deliveries(self, raw: Sequence[RawEntry]) -> list[StreamEntry]:
        """Entries with their delivery counts (XPENDING per id, one round trip).
        An id no longer in this consumer's PEL was claimed by another: skipped."""
        if not raw:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for entry_id, _ in raw:
                pipe.xpending_range(
                    self.stream,
                    self.group,
                    min=entry_id,
                    max=entry_id,
                    count=1,
                    consumername=self.consumer,
                )
            replies: list[list[dict[str, Any]]] = await pipe.execute()
        counts = {
            row["message_id"]: int(row["times_delivered"]) for rows in replies for row in rows
        }
        return [
            decode_entry(self.stream, entry_id, fields, deliveries=counts[entry_id])
            for entry_id, fields in raw
            if entry_id in counts
        ]

    async def _housekeeping(self) -> None:
        """Trimming and gauges: their failures are logged, never block reading."""
        if self.settings.retention is not None and self._trim_every.due():
            await self._best_effort(
                "stream trim failed", trim(self._client, self.stream, self.settings.retention)
            )
        if self._gauges_every.due():
            await self._best_effort(
                "stream gauges refresh failed",
                metrics.refresh_group_gauges(self._client, self.stream, self.group),
            )

    async def _best_effort(self, message: str, work: Awaitable[Any]) -> None:
        try:
            await work
        except TRANSIENT_ERRORS:
            raise
        except redis.exceptions.ResponseError as exc:
            if group_lost(exc):
                raise  # recovered by the loop, at once
            logger.exception(message, extra={"stream": self.stream, "group": self.group})
        except Exception:
            logger.exception(message, extra={"stream": self.stream, "group": self.group})

    # running and settling

    async def _process(self, entries: Sequence[StreamEntry]) -> list[Outcome]:
        try:
            if self._fresh:
                # New entries: never delivered before and never deleted (they
                # were just read), so none is decided without its handler.
                return await run_batch(
                    entries,
                    self._attempt,
                    key_of=self._key_of,
                    max_concurrency=self.settings.max_concurrency,
                )
            return await super()._process(entries)
        finally:
            # Counted once a batch: a Prometheus inc() takes a lock.
            consumed, self._consumed = self._consumed, 0
            if consumed:
                self._counters.consumed.inc(consumed)

    def _triage(self, entry: StreamEntry) -> Outcome | None:
        if not entry.fields:
            return Outcome(entry, Status.GONE)  # deleted while pending: nothing to run
        if entry.deliveries > self.settings.max_deliveries:
            # Delivered that often yet never acknowledged: its handler never
            # finished, perhaps because the entry kills the process.
            error = f"delivered {entry.deliveries} times without being acknowledged"
            return Outcome(entry, Status.DEAD, error)
        return None

    async def _attempt(self, entry: StreamEntry) -> Outcome:
        self._consumed += 1
        error = await call_handler(self._handler, entry, self.settings.handler_timeout_s)
        if error is None:
            return Outcome(entry, Status.DONE)
        self._counters.failed.inc()
        if entry.deliveries >= self.settings.max_deliveries:
            return Outcome(entry, Status.DEAD, error)
        return Outcome(entry, Status.RETRY, error)  # stays pending: claimed when idle

    async def _settle(self, outcomes: Sequence[Outcome]) -> None:
        done = Status.DONE
        if outcomes and all(o.status is done for o in outcomes):  # the usual batch
            # As bytes: redis-py sends those as they are, a str goes through its encoder.
            await self._client.xack(
                self.stream, self.group, *[o.entry.entry_id.encode() for o in outcomes]
            )
            self._counters.acknowledged.inc(len(outcomes))
            return
        settled = [o for o in outcomes if o.settled]
        if not settled:
            return
        dead = [o for o in settled if o.status is Status.DEAD]
        # As bytes: redis-py sends those as they are, a str goes through its encoder.
        ids = [o.entry.entry_id.encode() for o in settled]
        if not dead:  # one XACK, no pipeline to build
            await self._client.xack(self.stream, self.group, *ids)
        else:
            async with self._client.pipeline(transaction=False) as pipe:
                for outcome in dead:
                    self._queue_dead_letter(pipe, outcome)
                pipe.xack(self.stream, self.group, *ids)
                await pipe.execute()
        for outcome in dead:
            self._report_dead_letter(outcome)
        gone = [o for o in settled if o.status is Status.GONE]
        self._counters.acknowledged.inc(len(settled) - len(gone))

    # recovery

    def _on_transient_error(self) -> None:
        # A reply lost with the connection leaves entries in this consumer's PEL
        # that nobody is handling: re-read them rather than wait for a claim.
        self._pel_cursor = START_OF_PEL

    async def _recover(self, exc: redis.exceptions.ResponseError) -> bool:
        if not group_lost(exc):
            return False
        logger.error(
            "consumer group lost (redis flushed, or restarted without its data); recreating it",
            extra={"stream": self.stream, "group": self.group, "error": str(exc)},
        )
        metrics.GROUP_RECREATED.labels(self.stream).inc()
        self._group_ready = False
        self._pel_cursor = START_OF_PEL
        self._claim_cursor = None
        return True


def _stream_entries(reply: Any) -> list[RawEntry]:
    """The entries of a one-stream XREAD/XREADGROUP reply (RESP2 shape)."""
    entries: list[RawEntry] = reply[0][1] if reply else []
    return entries
