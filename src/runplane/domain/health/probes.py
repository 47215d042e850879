"""Probing a runtime: where a probe goes, what it found, and the per-runtime
state that turns single results into events (DESIGN §7 `health`).

A probe result alone says little: a probe failing once is noise. ProbeTracker
counts consecutive failures, so `probe_failed` fires once, when the count
reaches `failure_threshold`, and `probe_recovered` on the first success after
that; no event in between. The first probe runs `initial_delay_s` after the
runtime started, then every `period_s`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.spec import HealthCheck
from runplane.domain.records import RuntimeRecord

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where a probe goes: `host:port` for http/tcp; for exec, the runtime
    whose user and working directory it runs with, and its spec's `env`/`cwd`."""

    host: str = DEFAULT_HOST
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    runtime_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    latency_s: float
    detail: str = ""


def target_of(record: RuntimeRecord, check: HealthCheck) -> ProbeTarget:
    """The probe's target: host from the record's endpoint (loopback if none),
    port from the check, else the endpoint, else the spec's `port`."""
    host, port = DEFAULT_HOST, None
    endpoint = record.engine_endpoint or ""
    if ":" in endpoint:
        raw_host, _, raw_port = endpoint.rpartition(":")
        host = raw_host.strip("[]") or DEFAULT_HOST
        port = int(raw_port) if raw_port.isdigit() else None
    spec_port = record.spec.get("port")
    if port is None and isinstance(spec_port, int):
        port = spec_port
    env = record.spec.get("env")
    cwd = record.spec.get("cwd")
    return ProbeTarget(
        host=host,
        port=check.port if check.port is not None else port,
        env=dict(env) if isinstance(env, dict) else {},
        cwd=cwd if isinstance(cwd, str) else None,
        runtime_id=record.runtime_id,
    )


class ProbeTracker:
    """One runtime's probe schedule and failure count. `failing` starts True for
    a runtime already known to be down, so its first success reports recovery."""

    def __init__(self, check: HealthCheck, started_at: datetime, *, failing: bool = False) -> None:
        self.check = check
        self.failing = failing
        self.consecutive_failures = 0
        self.next_due = started_at + timedelta(seconds=check.initial_delay_s)

    def due(self, now: datetime) -> bool:
        return now >= self.next_due

    def record(self, result: ProbeResult, now: datetime) -> HealthEventType | None:
        """Count `result`; the event it makes fire, if any."""
        self.next_due = now + timedelta(seconds=self.check.period_s)
        if result.ok:
            self.consecutive_failures = 0
            if self.failing:
                self.failing = False
                return HealthEventType.PROBE_RECOVERED
            return None
        self.consecutive_failures += 1
        if not self.failing and self.consecutive_failures >= self.check.failure_threshold:
            self.failing = True
            return HealthEventType.PROBE_FAILED
        return None
