"""Trimming streams that no consumer of runplane's own trims: the events stream.

`streams.retention.trim` never removes an entry a consumer group has not yet
acknowledged (the webhooks group, say); readers without a group (SSE clients)
are told to resync if they fall behind what is kept."""

from __future__ import annotations

import logging

import redis.asyncio

from runplane.streams.retention import RetentionPolicy, trim
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)


class RetentionLoop:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        policies: dict[str, RetentionPolicy],
        *,
        interval_s: float = 60.0,
    ) -> None:
        self.client = client
        self.policies = policies
        self.interval_s = interval_s
        self._loop = PeriodicLoop("stream retention", self.trim_once, interval_s=interval_s)

    def __repr__(self) -> str:
        return f"RetentionLoop({sorted(self.policies)})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        await self._loop.run()

    async def trim_once(self) -> int:
        removed = 0
        for stream, policy in self.policies.items():
            try:
                removed += await trim(self.client, stream, policy)
            except Exception as exc:  # Redis away: the next round trims
                logger.warning(
                    "stream trim failed",
                    extra={"stream": stream, "error": repr(exc)},
                    exc_info=True,
                )
        return removed
