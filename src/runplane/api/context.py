"""What the API is handed by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from runplane.ports.lifecycle import OperationLog, RuntimeStore
from runplane.ports.streams import DeadLetterQueue, JobQueue
from runplane.services.api_keys import ApiKeys
from runplane.services.lifecycle.service import Lifecycle

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when the component it checks is not usable."""


@dataclass(frozen=True, slots=True)
class ApiContext:
    lifecycle: Lifecycle
    runtimes: RuntimeStore
    operations: OperationLog
    keys: ApiKeys
    readiness: Mapping[str, ReadinessCheck]
    jobs: JobQueue | None = None
    dead_letters: DeadLetterQueue | None = None
    wait_max_timeout_s: float = 300.0
