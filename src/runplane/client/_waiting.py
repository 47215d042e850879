"""wait_for's plan, shared by both clients.

1. Events first: follow the stream for this runtime, then read the record (an
   event after the stream opened cannot be missed between the two); every
   event that reports a wanted `status_to` ends the wait. The server pushes
   the change as soon as it commits, and holds no per-waiter polling loop.
   Only settled statuses are reported by events (models.SETTLED): a wait for
   `starting`, say, goes to step 2 at once.
2. Fallback, when the stream cannot be had or breaks (429 for a key that holds
   max_streams_per_key streams, 503, a dropped connection, a lagging cut):
   the server's long poll `GET /v1/runtimes/{id}/wait`, in chunks of at most
   POLL_CHUNK_S; one request per chunk, and the server shares one read per
   runtime among all its waiters.
3. If the long poll is refused too (429: max_waits_per_key), plain reads of the
   record, from every READ_DELAYS_S[0] s to every READ_DELAYS_S[-1] s."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from runplane.client._stream import Cut
from runplane.client.errors import (
    ConnectionFailed,
    EventsResync,
    RateLimited,
    ServiceUnavailable,
    WaitTimeout,
)
from runplane.client.models import SETTLED, Event, Runtime

POLL_CHUNK_S = 60.0
READ_DELAYS_S = (0.25, 0.5, 1.0, 2.0)
HTTP_SLACK_S = 10.0
"""A long poll's HTTP timeout is its wait plus this."""

FALL_BACK_ON = (
    RateLimited,
    ServiceUnavailable,
    ConnectionFailed,
    httpx.TransportError,
    Cut,
    EventsResync,
)


@dataclass
class Wait:
    runtime_id: str
    wanted: frozenset[str]
    timeout_s: float
    poll: bool = False
    """Skip the event stream (step 1)."""

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def by_events(self) -> bool:
        return not self.poll and self.wanted <= SETTLED

    def reached(self, event: Event | None) -> bool:
        return (
            event is not None
            and event.subject == self.runtime_id
            and event.data.status_to in self.wanted
        )

    def chunk(self) -> float:
        return min(self.remaining(), POLL_CHUNK_S)

    def timed_out(self, last: Runtime | None) -> WaitTimeout:
        seen = f"still {last.status}" if last is not None else "not in that status"
        wanted = "|".join(sorted(self.wanted))
        return WaitTimeout(
            f"runtime {self.runtime_id} is {seen} after {self.timeout_s:g}s (waited for {wanted})"
        )

    def read_delay(self, reads: int) -> float:
        delay = READ_DELAYS_S[min(reads, len(READ_DELAYS_S) - 1)]
        return max(0.0, min(delay, self.remaining()))
