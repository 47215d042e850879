"""One group consumer per job stream, each feeding its operation's JobHandler."""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio

from runplane.domain.operations import OpKind
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.streams import JobResultPublisher
from runplane.ports.system import Clock
from runplane.services.lifecycle.service import Lifecycle
from runplane.streams.group import GroupConsumer
from runplane.streams.settings import ConsumerSettings
from runplane.workers.jobs.handler import JobHandler


def job_consumers(
    client: redis.asyncio.Redis,
    *,
    streams: Mapping[OpKind, str],
    lifecycle: Lifecycle,
    runtimes: RuntimeStore,
    results: JobResultPublisher,
    clock: Clock,
    group: str,
    consumer: str,
    settings: ConsumerSettings,
    lease_wait_ms: int,
) -> list[GroupConsumer]:
    """`client` must not decode responses (see streams.loop.check_client)."""
    return [
        GroupConsumer(
            client,
            stream=streams[op],
            group=group,
            consumer=consumer,
            handler=JobHandler(
                op, lifecycle, runtimes, results, clock, lease_wait_ms, settings.max_deliveries
            ),
            settings=settings,
        )
        for op in OpKind
    ]
