"""Stream consumer settings from Settings."""

from __future__ import annotations

from runplane.adapters.redis.names import DEAD_LETTER_STREAM
from runplane.config import Settings
from runplane.streams.retention import RetentionPolicy
from runplane.streams.settings import ConsumerSettings


def events_retention(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        max_len=settings.events_stream_max_len, max_age_ms=settings.events_stream_max_age_ms
    )


def consumer_settings(settings: Settings) -> ConsumerSettings:
    retention = RetentionPolicy(
        max_len=settings.job_stream_max_len, max_age_ms=settings.job_stream_max_age_ms
    )
    return ConsumerSettings(
        dead_letter_stream=DEAD_LETTER_STREAM,
        batch_size=settings.stream_batch_size,
        block_ms=settings.stream_block_ms,
        max_concurrency=min(settings.stream_max_concurrency, settings.stream_batch_size),
        max_deliveries=settings.stream_max_deliveries,
        claim_idle_ms=settings.stream_claim_idle_ms,
        retention=retention,
    )
