"""Prometheus metrics of stream consumers.

Module-level, since prometheus-client's registry is process-global: a second
registration of the same name would fail. Counters carry the stream; the gauges
describe one consumer group of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio
from prometheus_client import Counter, Gauge

CONSUMED = Counter(
    "runplane_stream_consumed", "Stream entries handed to a handler (each delivery).", ["stream"]
)
ACKNOWLEDGED = Counter(
    "runplane_stream_acknowledged",
    "Stream entries finished: acknowledged (group mode) or passed by the offset.",
    ["stream"],
)
FAILED = Counter(
    "runplane_stream_failed", "Handler runs that raised (the entry is retried).", ["stream"]
)
DEAD_LETTERED = Counter(
    "runplane_stream_dead_lettered", "Stream entries moved to the dead letters.", ["stream"]
)
GROUP_RECREATED = Counter(
    "runplane_stream_group_recreated",
    "Consumer groups found missing (NOGROUP: Redis flushed or restarted empty) and recreated.",
    ["stream"],
)
PENDING = Gauge(
    "runplane_stream_pending",
    "Entries delivered to the group, not yet acknowledged.",
    ["stream", "group"],
)
OLDEST_PENDING_IDLE_SECONDS = Gauge(
    "runplane_stream_oldest_pending_idle_seconds",
    "Time since the oldest pending entry of the group was last delivered.",
    ["stream", "group"],
)
LAG = Gauge(
    "runplane_stream_lag",
    "Entries of the stream not yet delivered to the group.",
    ["stream", "group"],
)


@dataclass(frozen=True, slots=True)
class StreamCounters:
    """The counters' children of one stream, looked up once per consumer rather
    than per entry (`labels()` hashes the label values and takes a lock)."""

    consumed: Counter
    acknowledged: Counter
    failed: Counter
    dead_lettered: Counter

    @classmethod
    def of(cls, stream: str) -> StreamCounters:
        return cls(
            consumed=CONSUMED.labels(stream),
            acknowledged=ACKNOWLEDGED.labels(stream),
            failed=FAILED.labels(stream),
            dead_lettered=DEAD_LETTERED.labels(stream),
        )


async def refresh_group_gauges(client: redis.asyncio.Redis, stream: str, group: str) -> None:
    """Set the gauges of `group` from XPENDING (summary and oldest entry) and
    XINFO GROUPS (lag; absent when Redis cannot tell, e.g. after deletions)."""
    summary = await client.xpending(stream, group)
    pending = int(summary["pending"])
    idle_s = 0.0
    if pending:
        oldest = await client.xpending_range(stream, group, min="-", max="+", count=1)
        if oldest:
            idle_s = int(oldest[0]["time_since_delivered"]) / 1000
    PENDING.labels(stream, group).set(pending)
    OLDEST_PENDING_IDLE_SECONDS.labels(stream, group).set(idle_s)
    for info in await client.xinfo_groups(stream):
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) == group:
            lag = info.get("lag")
            if lag is not None:
                LAG.labels(stream, group).set(int(lag))
