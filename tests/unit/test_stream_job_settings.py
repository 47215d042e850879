"""Job consumers read a batch of 100 and run at most 64 jobs at once (issue 15)."""

from __future__ import annotations

from runplane.bootstrap.streams import consumer_settings
from runplane.config import Settings


def test_job_batches_read_more_than_they_run_at_once() -> None:
    default = consumer_settings(Settings())
    assert (default.batch_size, default.max_concurrency) == (100, 64)
    small = consumer_settings(Settings(stream_batch_size=10))
    assert small.max_concurrency == 10  # never more at once than a batch holds
