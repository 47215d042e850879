"""What the API is handed by the composition root: one typed context, read by
every route through `context_of`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from runplane.api.limits import ApiLimits
from runplane.ports.health import HealthEventReader, HealthSnapshotStore
from runplane.ports.lifecycle import OperationLog, RuntimeStore
from runplane.ports.rate_limits import RateLimiter
from runplane.ports.streams import DeadLetterQueue, JobQueue
from runplane.ports.team_policies import TeamPolicyStore
from runplane.services.api_keys import ApiKeys
from runplane.services.event_fanout import EventFanout
from runplane.services.hooks import HookDirectory
from runplane.services.hosts.registry import HostRegistry
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_ops.settings import RuntimeSettingsService
from runplane.services.runtime_output import RuntimeOutput
from runplane.services.snapshots import Snapshots
from runplane.services.webhooks.management import WebhookService

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when the component it checks is not usable."""


@dataclass(frozen=True, slots=True)
class HealthSources:
    """What the health route reads."""

    snapshots: HealthSnapshotStore
    events: HealthEventReader


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The optional parts are absent in apps built for one concern (tests); a
    route whose part is absent answers 503 service_unavailable."""

    lifecycle: Lifecycle
    runtimes: RuntimeStore
    operations: OperationLog
    keys: ApiKeys
    readiness: Mapping[str, ReadinessCheck]
    jobs: JobQueue | None = None
    dead_letters: DeadLetterQueue | None = None
    event_reader: EventFanout | None = None
    """Pages pass through to the stream; SSE clients share its one live reader."""
    webhooks: WebhookService | None = None
    health: HealthSources | None = None
    wait_max_timeout_s: float = 300.0
    policies: TeamPolicyStore | None = None
    """Team policies (`/v1/teams/{team_id}/policy`)."""
    limits: ApiLimits = field(default_factory=ApiLimits)
    rate_limiter: RateLimiter | None = None
    """Per-key budgets shared by every instance; None: no rate limit."""
    metrics_token: str | None = None
    """The bearer token `/metrics` takes besides an admin key (settings.metrics_token)."""
    hosts: HostRegistry | None = None
    """Hosts (`/v1/hosts`, admin keys only)."""
    hooks: HookDirectory | None = None
    """Extension hooks (`/v1/hooks`, admin keys only)."""
    snapshots: Snapshots | None = None
    """Snapshots (`/v1/snapshots`, `/v1/runtimes/{id}/snapshot`)."""
    runtime_settings: RuntimeSettingsService | None = None
    """Timeouts, labels, idle rules and activity (issue 16)."""
    runtime_output: RuntimeOutput | None = None
    """Runtimes' logs and metrics, through their hosts' drivers."""
