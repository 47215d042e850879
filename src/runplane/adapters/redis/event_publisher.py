"""Publishing lifecycle events: the durable stream and its live channel, each
event once.

A relay that crashes between publishing a batch and marking it sent leaves the
next leader to publish it again, and a leader paused past its lease may publish
a batch its successor publishes too. So one script, per event, adds its id to
`{<stream>}:published` (a sorted set in the stream's slot, scored by Redis's
time) and, for a durable one, XADDs it only if the id was not there; the live
channel then carries only the events that were new, transient ones included.
The set keeps the ids of the last `keep_ms` (24 h), at most `keep_count`
(100,000) of them: an event published again after its id left the set would
be published twice (a relay republishes one batch at most, seconds old)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio

from runplane.adapters.redis.client import is_cluster, unavailable_on_connection_errors
from runplane.adapters.redis.names import EVENTS_CHANNEL, EVENTS_STREAM, published_ids_key
from runplane.domain.lifecycle_events import EVENT_FIELD, OutboxEvent

KEEP_MS = 24 * 3600 * 1000
KEEP_COUNT = 100_000

# KEYS[1]: the stream; KEYS[2]: its published ids. ARGV: the entry field, keep_ms,
# keep_count, the live channel ('' to leave the PUBLISHes to the caller), then
# (event id, durable '1' or '0', payload) triples; a transient event is never on
# the stream. Returns the 1-based positions, in the batch, of the events that
# were new (the durable ones among them now on the stream, every one of them
# PUBLISHed, in the batch's order, when a channel was given).
PUBLISH_ONCE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep_ms, keep_count, channel = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local new = {}
for i = 5, #ARGV, 3 do
  if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[i]) == 1 then
    if ARGV[i + 1] == '1' then
      redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i + 2])
    end
    new[#new + 1] = math.floor((i - 2) / 3)
  end
end
if channel ~= '' then
  for _, position in ipairs(new) do
    redis.call('PUBLISH', channel, ARGV[4 + 3 * position])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - keep_ms))
local excess = redis.call('ZCARD', KEYS[2]) - keep_count
if excess > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
redis.call('PEXPIRE', KEYS[2], keep_ms)
return new
"""


class RedisEventPublisher:
    """Durable events are XADDed to the stream (field `event`), transient ones
    not; each is PUBLISHed to the channel, in the batch's order, the first time
    its id is published only."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        stream: str = EVENTS_STREAM,
        channel: str = EVENTS_CHANNEL,
        keep_ms: int = KEEP_MS,
        keep_count: int = KEEP_COUNT,
    ) -> None:
        if keep_ms < 1 or keep_count < 1:
            raise ValueError("keep_ms and keep_count must be positive")
        self.client = client
        self.stream = stream
        self.channel = channel
        self.published_ids = published_ids_key(stream)
        self.keep_ms = keep_ms
        self.keep_count = keep_count
        self._publish_once = client.register_script(PUBLISH_ONCE_SCRIPT)

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        cluster = is_cluster(self.client)
        with unavailable_on_connection_errors("publish events"):
            # One Redis: the script PUBLISHes too (one round trip a batch). A
            # cluster: from here, one at a time, in order (redis-py refuses
            # PUBLISH in a cluster pipeline); PUBLISH reaches every node's subscribers.
            args: list[str | int] = [EVENT_FIELD, self.keep_ms, self.keep_count]
            args.append("" if cluster else self.channel)
            for event in events:
                args += [event.event_id, "1" if event.durable else "0", event.payload]
            positions: list[int] = await self._publish_once(
                keys=[self.stream, self.published_ids], args=args
            )
            if cluster:
                for position in positions:  # batch order
                    await self.client.publish(self.channel, events[position - 1].payload)
