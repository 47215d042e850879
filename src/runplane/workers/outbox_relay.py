"""The outbox relay: publishes committed events in order, one leader at a time.

Events are committed with the state change they describe (the outbox), so a
crash anywhere loses none: the relay publishes what is pending and only then
marks it sent. A crash between the two publishes an event again — with the same
id, which is how consumers recognise a repeat. A Redis lease elects one relay
among the instances, so events leave in commit order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from prometheus_client import Counter, Gauge

from runplane.domain.errors import StoreUnavailable
from runplane.ports.leases import LeaseStore
from runplane.ports.lifecycle_events import EventPublisher, Outbox
from runplane.ports.system import Clock, TokenGenerator

logger = logging.getLogger(__name__)

RELAY_LEASE = "runplane:outbox-relay"

PUBLISHED = Counter(
    "runplane_events_published_total", "Lifecycle events published by the relay.", ["durable"]
)
RELAY_LAG = Gauge(
    "runplane_outbox_lag_seconds", "Age of the oldest event not yet published (0 when none)."
)


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        publisher: EventPublisher,
        leases: LeaseStore,
        clock: Clock,
        tokens: TokenGenerator,
        *,
        poll_interval_s: float = 0.1,
        batch_size: int = 500,
        lease_ttl_ms: int = 10_000,
        lease_name: str = RELAY_LEASE,
    ) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.leases = leases
        self.clock = clock
        self.token = tokens.new_token()
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.lease_ttl_ms = lease_ttl_ms
        self.lease_name = lease_name
        self._stopping = asyncio.Event()
        self._leader = False

    def __repr__(self) -> str:
        return "OutboxRelay()"

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    busy = await self.step()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self._log_failure(exc)
                    busy = False
                if not busy:
                    await self._sleep(self._delay_s(failures))
        finally:
            if self._leader:
                await self._release()

    async def step(self) -> bool:
        """One round: hold the leadership, publish one batch. True if it published."""
        if not await self._lead():
            return False
        pending = await self.outbox.pending(limit=self.batch_size)
        await self._update_lag()
        if not pending:
            return False
        await self.publisher.publish(pending)
        await self.outbox.mark_sent([event.seq for event in pending], self.clock.now())
        for event in pending:
            PUBLISHED.labels(durable=str(event.durable).lower()).inc()
        return True

    async def _lead(self) -> bool:
        if self._leader:
            self._leader = await self.leases.renew(self.lease_name, self.token, self.lease_ttl_ms)
            if not self._leader:
                logger.warning("outbox relay lost its leadership")
        else:
            self._leader = await self.leases.try_acquire(
                self.lease_name, self.token, self.lease_ttl_ms
            )
            if self._leader:
                logger.info("outbox relay is the leader")
        return self._leader

    async def _update_lag(self) -> None:
        oldest = await self.outbox.oldest_pending_at()
        lag = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        RELAY_LAG.set(max(lag, 0.0))

    async def _release(self) -> None:
        try:
            await self.leases.release(self.lease_name, self.token)
        except Exception:
            logger.warning("outbox relay could not release its lease", exc_info=True)

    def _delay_s(self, failures: int) -> float:
        if not failures:
            return self.poll_interval_s
        backoff_s: float = min(10.0, 0.1 * 2.0**failures)
        return backoff_s * random.uniform(0.5, 1.0)

    def _log_failure(self, exc: Exception) -> None:
        if isinstance(exc, StoreUnavailable):
            logger.warning(
                "outbox relay waiting for its stores", extra={"error": str(exc)}, exc_info=exc
            )
        else:
            logger.exception("outbox relay step failed")

    async def _sleep(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)
