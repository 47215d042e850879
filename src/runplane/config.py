"""Settings, read from the environment with the RUNPLANE_ prefix."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runplane.adapters.redis.names import JOB_GROUP
from runplane.logs import LogFormat, LogLevel


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNPLANE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".runplane")
    redis_url: str | None = None
    redis_cluster: bool = False
    """RUNPLANE_REDIS_URL names a node (any one) of a Redis Cluster: runplane
    speaks the cluster protocol. Needs RUNPLANE_REDIS_URL (the embedded Redis
    is never a cluster)."""
    database_url: str | None = None
    driver: str = "process"
    docker_host: str | None = None
    docker_instance: str = "default"
    """The `runplane.instance` label on every container: one value per deployment
    (every instance of it), so containers are re-adopted whatever instance restarts."""
    instance_name: str | None = None
    log_format: LogFormat = LogFormat.TEXT
    """`text` (`time level logger message key=value ...`) or `json` (one object a line)."""
    log_level: LogLevel = LogLevel.INFO
    """debug, info, warning or error: the lowest level printed; debug adds the
    start-up chatter (each worker, stream and lease; runplane.logs.STARTUP_CHATTER)."""

    job_group: str = JOB_GROUP
    stream_batch_size: int = Field(default=100, ge=1)
    stream_max_concurrency: int = Field(default=64, ge=1)
    """Jobs one stream consumer runs at once (at most one per runtime); a batch
    larger than this waits for a free slot, so reading more per round trip
    (`stream_batch_size`) does not raise the jobs in flight."""
    stream_block_ms: int = Field(default=1_000, ge=10)
    stream_claim_idle_ms: int = Field(default=120_000, ge=100)
    stream_max_deliveries: int = Field(default=5, ge=1)
    job_stream_max_len: int | None = Field(default=100_000, ge=1)
    job_stream_max_age_ms: int | None = Field(default=None, ge=1)

    events_stream_max_len: int | None = Field(default=1_000_000, ge=1)
    events_stream_max_age_ms: int | None = Field(default=None, ge=1)
    """Retention of `runplane:events`; never past what the webhooks group has not
    acknowledged. A resuming SSE client older than what is kept is told to resync."""

    lease_ttl_ms: int = Field(default=10_000, ge=300)
    leader_ttl_ms: int = Field(default=2_000, ge=300)
    """TTL of the singleton workers' leader leases: renewed every third of it,
    retried by followers every quarter, so the lead moves within ~1.25x it of a
    leader's death. Shorter than `lease_ttl_ms`, as a leader holds its lease all
    the time (a Redis outage longer than it stops every leader until it is back)."""
    outbox_idle_poll_max_s: float = Field(default=1.0, ge=0.1, le=60)
    """The outbox relay's longest wait while nothing is pending. Rows this
    instance commits wake it at once; rows another instance commits are
    relayed by the leading relay within this (plus a round)."""
    outbox_batch_window_s: float = Field(default=0.05, ge=0, le=1)
    """Rounds of the outbox relay woken by commits start at least this far
    apart, so under load one round publishes many operations' events: the
    most an event waits for its round (a lone commit goes after 5 ms)."""
    stream_lease_wait_ms: int = Field(default=15_000, ge=0)
    """Longer than the lease TTL: a lease left by a crashed instance expires
    while a stream job waits, so the job applies instead of bouncing."""
    start_timeout_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)
    pause_timeout_s: float = Field(default=30.0, gt=0)
    wait_max_timeout_s: float = Field(default=300.0, gt=0)

    health_monitor_interval_s: float = Field(default=1.0, gt=0)
    """How often the health monitor looks at the runtimes that need a look (a
    probe due, one new, unreachable or unwell, or on a driver whose host does
    not report ends itself)."""
    health_sweep_s: float = Field(default=30.0, gt=0)
    """How often the health monitor, and each host's exit watcher, look at
    every runtime anyway: what a lost exit notice hid is found then."""
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    reconcile_jitter_s: float = Field(default=5.0, ge=0)
    stop_orphans: bool = False
    """Stop live processes/containers that carry runplane's marks but no record."""
    restart_backoff_base_s: float = Field(default=0.5, gt=0)
    restart_backoff_cap_s: float = Field(default=60.0, gt=0)
    health_events_stream_max_len: int | None = Field(default=1_000_000, ge=1)
    snapshots_stream: str = Field(default="runtime:snapshots", min_length=1, max_length=256)
    """Where health snapshots go: a seed consumer's own stream may be named here."""
    snapshot_entry_type: str = Field(default="", max_length=64)
    """Set, each snapshot entry carries `event_type=<this>` (the seeds' discriminator,
    `runtime_snapshot_update`), for a stream shared with other entry types."""
    snapshot_layout: Literal["runplane", "seed"] = "runplane"
    """`seed` adds the seeds' field names (`game_id`, `runtime_status`,
    `engine_health_summary`) to each snapshot entry, beside runplane's own."""

    hooks: str = ""
    """Extension hooks besides the `runplane.hooks` entry points: comma-separated
    `name=module:attribute` (docs/hooks.md)."""
    hook_entry_points: bool = True
    """Load the hooks installed packages declare (entry point group `runplane.hooks`)."""
    hook_attempts: int = Field(default=3, ge=1, le=20)
    """Tries of a hook per delivery of an event, with backoff between them."""
    hook_timeout_s: float = Field(default=10.0, gt=0)
    hook_backoff_base_s: float = Field(default=0.5, gt=0)
    hook_backoff_cap_s: float = Field(default=10.0, gt=0)
    hook_max_deliveries: int = Field(default=5, ge=1)
    """Deliveries of an event whose every attempt failed, before its dead letter."""
    hooks_from: Literal["new", "all"] = "new"
    """Where a new hook's group starts: events from now, or every retained one."""

    metrics_token: str | None = Field(default=None, min_length=16)
    """`/metrics` answers `Authorization: Bearer <metrics_token>` (or an admin key);
    unset, it needs an admin key."""
    api_key_cache_s: float = Field(default=1.0, ge=0, le=60)
    """How long a key read from the database is trusted in memory: a key revoked
    on another instance still opens this one for up to this long; 0: read on
    every request."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """A listener of its own, on `host`, serving `/metrics` without a key: for a
    scraper on a network the API's clients cannot reach. Unset: no such listener."""

    runtime_user: str = "nobody"
    """The user process runtimes and exec probes run as when runplane runs as
    root (supplementary groups dropped). "" means runplane's own user
    (development, tests). A runplane that is not root cannot switch users:
    runtimes run as its own user, and a name other than that is warned about."""
    work_dir: Path | None = None
    """Where each process runtime gets its working directory, `<work_dir>/<id>`
    (0700, owned by the runtime user); the root is 0711. Default: beside the
    data dir, `<data_dir>-work`, since the data dir (0700) is closed to the
    runtime user."""

    webhook_allow_private: bool = False
    webhook_retry_schedule_s: str = "5,300,1800,7200,18000,36000,36000"
    webhook_idle_poll_max_s: float = Field(default=2.0, ge=0.5, le=60)
    """The delivery loop's longest wait while nothing is due: a retry is
    attempted at most this late, and a delivery another instance's fan-out
    added within it (this instance's own wake it at once)."""

    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """A larger request body is refused (413) before it is read, key or no key."""
    request_body_timeout_s: float = Field(default=10.0, gt=0)
    """A body not received whole in this long is refused (408), its connection closed."""
    rate_limit_per_s: float = Field(default=50.0, ge=0)
    """Requests a second per team key, shared by every instance (Redis); 0: no limit.
    Admin keys are not limited."""
    rate_limit_burst: int = Field(default=200, ge=1)
    max_waits_per_key: int = Field(default=16, ge=0)
    """Concurrent GET /v1/runtimes/{id}/wait per team key on one instance; 0: no bound."""
    max_streams_per_key: int = Field(default=16, ge=0)
    """Concurrent SSE followers per team key on one instance; 0: no bound."""
    sse_flush_ms: int = Field(default=0, ge=0, le=1000)
    """How long live events wait for more before SSE followers are woken: each
    follower gets what arrived meanwhile in one write (less CPU per event, up to
    this much later); 0: once per read of the events stream."""
    sse_coalesce_ms: int = Field(default=20, ge=0, le=1000)
    """The shortest time between two wakes of the SSE followers of one filter: an
    event after a quieter gap goes out at once; those that come sooner wait for
    the rest of it and go out together, one write per follower (under load, one
    per this many ms); 0: once per read of the events stream."""
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    """A connection whose request line and headers are not whole in this long (from
    connecting, or from the previous response) is closed."""
    http_keep_alive_s: int = Field(default=5, ge=1)
    """An idle keep-alive connection is closed after this long."""
    http_max_concurrency: int = Field(default=4096, ge=0)
    """Open connections (or requests in flight) past which uvicorn answers 503; 0: none."""
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    """The request line and headers may not exceed this (h11's incomplete event size)."""

    host_id: str = Field(
        default_factory=lambda: _hostname_id(socket.gethostname()),
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
    )
    """The host `serve` registers the machine as (docs/hosts.md); default its hostname."""
    host_address: str = ""
    """How other parts reach this host (informational; a host opens no port)."""
    host_labels: str = ""
    """`key=value,...` labels of this host, for placement selectors: `zone=a,gpu=false`."""
    embedded_host: bool = True
    """`serve` runs the machine it is on as a host (registers it, holds its seat,
    serves its driver calls); false: runtimes live only on `runplane agent`s."""
    host_heartbeat_s: float = Field(default=2.0, gt=0)
    host_down_after_s: float = Field(default=10.0, gt=0)
    """A host whose last heartbeat is older than this is marked `down` (`host.down`)."""
    agent_max_calls: int = Field(default=32, ge=1)
    """Driver calls one agent runs side by side (one at a time per runtime)."""
    agent_answer_ttl_s: float = Field(default=3600.0, gt=0)
    """How long an agent keeps a call's answer, for a repeat of its call_id."""
    exit_watch_s: float = Field(default=1.0, gt=0)
    """How often an agent looks for process runtimes that ended (workers/exit_watch.py)."""
    host_call_timeout_s: float = Field(default=30.0, gt=0)
    """How long a caller waits for an agent's answer (a stop: its grace on top)."""
    host_drain_interval_s: float = Field(default=5.0, gt=0)
    """How often the leader moves running runtimes off draining hosts (docs/hosts.md)."""
    host_drain_batch: int = Field(default=4, ge=1)
    """Restarts one drain round makes at most (side by side)."""
    timers_interval_s: float = Field(default=1.0, gt=0)
    """How often the leader looks for due timeouts and idle runtimes (issue 16)."""
    timers_idle_wait_max_s: float = Field(default=5.0, gt=0, le=300)
    """The timers loop's longest sleep when nothing is due: how late a deadline
    set by another instance, or at create, may fire (issue 15)."""
    idle_check_floor_s: float = Field(default=1.0, gt=0)
    idle_check_cap_s: float = Field(default=60.0, gt=0)
    """A runtime's host is asked about its connections every quarter of its
    idle `after_s`, within [floor, cap] seconds."""

    runtime_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    """Per log file of each runtime (docs/operating.d/logs.md)."""
    runtime_log_files: int = Field(default=3, ge=1, le=100)
    """Files kept per runtime: its output takes at most files x max bytes."""
    logs_follow_poll_s: float = Field(default=0.5, gt=0, le=10)
    """How often a follower reads again when it has caught up."""
    metrics_sample_s: float = Field(default=5.0, ge=0.5)
    metrics_watch_s: float = Field(default=600.0, gt=0)
    """A runtime is sampled this long after someone last asked for its metrics."""
    metrics_per_runtime: bool = False
    """Sample every runtime of this host and export per-runtime series on /metrics."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'runplane.db').resolve()}"

    @property
    def resolved_work_dir(self) -> Path:
        if self.work_dir is not None:
            return self.work_dir.resolve()
        data_dir = self.data_dir.resolve()
        return data_dir.with_name(f"{data_dir.name}-work")

    @property
    def consumer_name(self) -> str:
        """This instance's name in the consumer groups. Host and port: unique among
        live instances, and the same after a restart, so a restarted instance
        re-reads the entries it held when it died at once (no claim delay)."""
        return self.instance_name or f"{socket.gethostname()}:{self.port}"

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _hostname_id(hostname: str) -> str:
    """The hostname as a host id: characters outside [A-Za-z0-9._-] become `-`."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in hostname)
    cleaned = cleaned.lstrip("._-")[:128]
    return cleaned or "localhost"
