"""Knobs of a stream consumer, units in their names."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.streams.retention import RetentionPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSettings:
    """Read, retry and housekeeping settings shared by both consumer modes.

    `claim_idle_ms` must exceed the longest a handler runs: past it, another
    consumer may claim an entry that is still being handled. `block_ms` must
    stay below the client's socket timeout, or a quiet stream reads as a dead
    server. Group mode only: `claim_*`, `group_start_id`, `retention`,
    `trim_interval_s`, `metrics_interval_s`.
    """

    batch_size: int = 32
    block_ms: int = 2_000
    max_concurrency: int = 16
    max_deliveries: int = 5
    claim_idle_ms: int = 60_000
    claim_interval_s: float = 5.0
    dead_letter_stream: str
    """Where entries past `max_deliveries` go (the caller names it)."""
    dead_letter_max_len: int | None = 100_000
    """Approximate cap on the dead-letter stream; None keeps every entry."""
    backoff_base_s: float = 0.1
    """First delay after a Redis error (doubling, jittered), and in offset mode
    between deliveries of an entry whose handler asked to retry."""
    backoff_cap_s: float = 10.0
    handler_timeout_s: float | None = None
    """Cancel a handler run past this and count it as failed, so an entry that
    makes its handler hang cannot pin the stream. None: no bound (handlers bound
    their own I/O)."""
    group_start_id: str = "0"
    """Where a new group starts: "0" takes entries added before any consumer ran
    (a job submitted early is still a job), "$" only newer ones. Also used when
    a lost group (NOGROUP) is recreated."""
    retention: RetentionPolicy | None = None
    trim_interval_s: float = 60.0
    metrics_interval_s: float = 15.0
    settle_attempts_on_stop: int = 3
    """Tries to acknowledge (or save the offset of) finished entries on the way
    out when Redis fails; past them the entries are delivered again later."""

    def __post_init__(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "block_ms": self.block_ms,
            "max_concurrency": self.max_concurrency,
            "max_deliveries": self.max_deliveries,
            "claim_idle_ms": self.claim_idle_ms,
            "claim_interval_s": self.claim_interval_s,
            "backoff_base_s": self.backoff_base_s,
            "backoff_cap_s": self.backoff_cap_s,
            "trim_interval_s": self.trim_interval_s,
            "metrics_interval_s": self.metrics_interval_s,
            "settle_attempts_on_stop": self.settle_attempts_on_stop,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.handler_timeout_s is not None and self.handler_timeout_s <= 0:
            raise ValueError(f"handler_timeout_s must be positive, got {self.handler_timeout_s}")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must not be below backoff_base_s")
        if not self.dead_letter_stream:
            raise ValueError("dead_letter_stream must not be empty")
