"""The loop both consumer modes share: read a batch, run it, settle it, repeat.

A subclass chooses the read strategy once, at construction (group or offset),
and how finished entries are settled (XACK or an offset save). The loop owns
what is common: batches with per-key order, backoff with jitter on Redis
errors, recovery hooks, and a graceful stop that lets the batch in flight
finish and be settled before `run()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from runplane.domain.backoff import Backoff
from runplane.domain.dead_letters import dead_letter_fields
from runplane.domain.errors import StoreUnavailable
from runplane.logs import correlation, entry_correlation_id
from runplane.streams import metrics
from runplane.streams.batch import Outcome, Status, run_batch
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import Handler, KeyFunc
from runplane.streams.parked import ParkedReads
from runplane.streams.settings import ConsumerSettings

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # BusyLoadingError included
    redis.exceptions.TimeoutError,
    OSError,
    StoreUnavailable,
)
"""Redis (or the offset store) cannot be reached: wait and try again."""


def check_client(client: redis.asyncio.Redis, settings: ConsumerSettings) -> None:
    """Refuse a client that decodes responses (one non-UTF-8 entry would make
    every read fail), speaks RESP3, or whose socket timeout a blocking read
    would outlast."""
    kwargs: dict[str, Any] = (
        client.get_connection_kwargs()  # the options of each node's connections
        if isinstance(client, RedisCluster)
        else client.connection_pool.connection_kwargs
    )
    if kwargs.get("decode_responses"):
        raise ValueError("stream consumers need a client built with decode_responses=False")
    if str(kwargs.get("protocol") or 2) != "2":
        raise ValueError("stream consumers need a RESP2 client (the reply shapes differ)")
    socket_timeout_s = kwargs.get("socket_timeout")
    if socket_timeout_s is not None and settings.block_ms >= socket_timeout_s * 1000:
        raise ValueError(
            f"block_ms ({settings.block_ms}) must stay below the client's socket "
            f"timeout ({socket_timeout_s} s)"
        )


def own_connection(client: redis.asyncio.Redis) -> redis.asyncio.Redis:
    """A client on `client`'s pool that keeps one connection for itself: a
    consumer sends its commands one after another, and taking a pooled
    connection (a lock, a timeout, a liveness read) for each read and each
    XACK was a measurable share of a batch's CPU. A cluster client routes each
    command to its node's pool: it is used as it is."""
    if isinstance(client, RedisCluster):
        return client
    return client.client()


class ConsumerLoop(ABC):
    """Reads `stream` batch by batch and hands each entry to `handler`."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        stream: str,
        handler: Handler,
        settings: ConsumerSettings,
        key_of: KeyFunc,
    ) -> None:
        check_client(client, settings)
        self._shared = client
        self._client = own_connection(client)
        self.stream = stream
        self._handler = handler
        self.settings = settings
        self._key_of = key_of
        self._backoff = Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_cap_s)
        self._stopping = asyncio.Event()
        self._parked = ParkedReads()
        """The blocking read a stop cuts short (streams/parked.py)."""
        self._stopped = asyncio.Event()
        self._running = False
        self._unsettled: list[Outcome] | None = None
        self._counters = metrics.StreamCounters.of(stream)

    @property
    def running(self) -> bool:
        return self._running

    def request_stop(self) -> None:
        """Stop reading; `run()` returns once the batch in flight is settled.
        Synchronous, so a signal handler (SIGTERM) can call it. An idle read
        waiting for entries ends at once (`ParkedReads`)."""
        self._stopping.set()
        self._parked.stop()

    async def stop(self) -> None:
        """`request_stop()`, then wait until `run()` has returned: as long as the
        handlers in flight take (bound it with `asyncio.timeout` and cancel the
        `run()` task past it). A stopped consumer does not run again."""
        self.request_stop()
        if self._running:
            await self._stopped.wait()

    async def run(self) -> None:
        """Consume until stopped. Never returns early on an error: Redis errors
        back off and retry, anything else is logged and retried likewise."""
        if self._running:
            raise RuntimeError(f"consumer of {self.stream!r} is already running")
        self._running = True
        self._stopped.clear()
        logger.info("stream consumer started", extra={"stream": self.stream})
        try:
            while not self._stopping.is_set():
                await self._guarded_step()
            await self._settle_on_stop()
        finally:
            if self._client is not self._shared:
                # Its connection back to the pool; never in the way of the stop.
                with contextlib.suppress(Exception):
                    await self._client.aclose()
            self._running = False
            self._stopped.set()
            logger.info("stream consumer stopped", extra={"stream": self.stream})

    async def _guarded_step(self) -> None:
        try:
            await self._step()
        except TRANSIENT_ERRORS as exc:
            self._on_transient_error()
            await self._pause("stream consumer cannot reach redis, backing off", exc)
        except redis.exceptions.ResponseError as exc:
            # A repair is tried at once, but a second failure in a row waits:
            # something that keeps breaking must not spin the loop.
            if await self._recover(exc) and self._backoff.attempts == 0:
                self._backoff.note_failure()
            else:
                await self._pause("stream consumer got a redis error, backing off", exc)
        except Exception as exc:
            await self._pause("stream consumer step failed, backing off", exc, logging.ERROR)
        else:
            self._backoff.reset()

    async def _step(self) -> None:
        if self._unsettled is not None:
            await self._settle(self._unsettled)
            self._unsettled = None
        entries = await self._read()
        if not entries:
            return
        outcomes = await self._process(entries)
        # Kept until settled: a failed XACK / offset save is retried before the
        # next read, so finished work is not run again needlessly.
        self._unsettled = outcomes
        await self._settle(outcomes)
        self._unsettled = None

    async def _process(self, entries: Sequence[StreamEntry]) -> list[Outcome]:
        early = [self._triage(entry) for entry in entries]
        ready = [entry for entry, outcome in zip(entries, early, strict=True) if outcome is None]
        ran = await run_batch(
            ready,
            self._attempt,
            key_of=self._key_of,
            max_concurrency=self.settings.max_concurrency,
        )
        if len(ready) == len(entries):
            return ran  # nothing decided early: the usual batch
        outcomes = iter(ran)
        return [next(outcomes) if outcome is None else outcome for outcome in early]

    async def _settle_on_stop(self) -> None:
        for _ in range(self.settings.settle_attempts_on_stop):
            if self._unsettled is None:
                return
            try:
                await self._settle(self._unsettled)
                self._unsettled = None
            except TRANSIENT_ERRORS as exc:
                await self._pause("stream consumer cannot settle on stop, retrying", exc)
        if self._unsettled is not None:
            logger.warning(
                "stream consumer stopped with unsettled entries; they will be delivered again",
                extra={"stream": self.stream, "count": len(self._unsettled)},
            )

    async def _pause(self, message: str, exc: BaseException, level: int = logging.WARNING) -> None:
        delay_s = self._backoff.next_delay_s()
        logger.log(
            level,
            message,
            extra={"stream": self.stream, "error": repr(exc), "delay_s": round(delay_s, 3)},
            exc_info=exc,
        )
        await self._sleep(delay_s)

    async def _sleep(self, delay_s: float) -> bool:
        """Sleep `delay_s` unless asked to stop first; True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        return self._stopping.is_set()

    def _queue_dead_letter(self, pipe: redis.asyncio.client.Pipeline, outcome: Outcome) -> None:
        """Queue the XADD of `outcome`'s dead letter on `pipe`."""
        max_len = self.settings.dead_letter_max_len
        entry = outcome.entry
        fields: dict[Any, Any] = dead_letter_fields(
            entry.stream, entry.entry_id, entry.fields, outcome.error, entry.deliveries
        )
        pipe.xadd(
            self.settings.dead_letter_stream,
            fields,
            maxlen=max_len,
            approximate=max_len is not None,
        )

    def _report_dead_letter(self, outcome: Outcome) -> None:
        """Count and log a dead letter once its XADD went through."""
        self._counters.dead_lettered.inc()
        entry = outcome.entry
        with correlation(entry_correlation_id(entry.stream, entry.entry_id, entry.fields)):
            self._log_dead_letter(outcome)

    def _log_dead_letter(self, outcome: Outcome) -> None:
        logger.error(
            "stream entry dead-lettered",
            extra={
                "stream": self.stream,
                "entry_id": outcome.entry.entry_id,
                "deliveries": outcome.entry.deliveries,
                "error": outcome.error,
            },
        )

    def _triage(self, entry: StreamEntry) -> Outcome | None:
        """An outcome decided without running the handler, or None to run it."""
        return None

    def _on_transient_error(self) -> None:  # noqa: B027 - an optional hook
        """Hook: Redis was unreachable (state a subclass may want to re-check)."""

    async def _recover(self, exc: redis.exceptions.ResponseError) -> bool:
        """Hook: repair what `exc` says is broken; True if repaired."""
        return False

    @abstractmethod
    async def _read(self) -> list[StreamEntry]:
        """The next batch (may block up to block_ms); empty when there is none."""

    @abstractmethod
    async def _attempt(self, entry: StreamEntry) -> Outcome:
        """Run the handler on `entry` (as this mode retries); never raises."""

    @abstractmethod
    async def _settle(self, outcomes: Sequence[Outcome]) -> None:
        """Dead-letter and acknowledge / advance past the settled outcomes."""


def counted(outcomes: Sequence[Outcome], *statuses: Status) -> list[Outcome]:
    return [o for o in outcomes if o.status in statuses]
