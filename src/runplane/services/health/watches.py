"""What the health monitor keeps per runtime (a `Watch`), when a round between
sweeps looks at a runtime, and one probe run beside the monitor's round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Histogram

from runplane.domain.health.events import HealthEventType
from runplane.domain.health.probes import ProbeTracker, target_of
from runplane.domain.health.reactions import HealthSummary
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import Prober
from runplane.ports.system import Clock
from runplane.services.health.checks import probe_of
from runplane.services.health.reporter import HealthReporter

logger = logging.getLogger(__name__)

PROBE_LATENCY = Histogram(
    "runplane_probe_latency_seconds",
    "Time a health probe took, by probe type and outcome.",
    ["probe_type", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass(slots=True)
class Watch:
    """What the monitor knows about one runtime's current container."""

    container_id: str
    tracker: ProbeTracker | None
    announced: bool
    """container_started was reported (or the snapshot already names it)."""
    unwell: bool = False
    """inspect_unhealthy was reported and has not cleared yet."""
    back_reported: bool = False
    """probe_recovered was reported for an unreachable runtime without a probe."""
    probe: asyncio.Task[None] | None = None


def wants_look(
    watch: Watch | None, record: RuntimeRecord, told: Collection[str], now: datetime
) -> bool:
    """Whether a round between sweeps looks at `record`: its host does not tell
    its end (its driver is not in `told`), or something about it is new, due
    or in doubt."""
    if watch is None or watch.container_id != record.container_id:
        return True  # first sight: announce it, set its probe up
    if record.driver not in told or record.status is not Status.RUNNING:
        return True  # engine_unreachable: to see it come back
    if watch.unwell:
        return True  # to see it clear
    tracker = watch.tracker
    return tracker is not None and watch.probe is None and tracker.due(now)


def may_want_look(watch: Watch | None, record: RuntimeRecord, told: Collection[str]) -> bool:
    """Whether `wants_look` can say yes for `record` before its watch changes
    (a round that looks at something) or the records are listed again: the
    runtimes a round between sweeps needs to ask about at all."""
    return (
        watch is None
        or watch.container_id != record.container_id
        or record.driver not in told
        or record.status is not Status.RUNNING
        or watch.unwell
        or watch.tracker is not None
    )


async def cancel_probe(watch: Watch) -> None:
    probe, watch.probe = watch.probe, None
    if probe is not None and not probe.done():
        probe.cancel()
        # Not `await probe`: its CancelledError would look like the one a
        # cancel of this round raises, and suppressing it would swallow both.
        await asyncio.wait([probe])


async def first_watch(
    reporter: HealthReporter,
    clock: Clock,
    record: RuntimeRecord,
    container_id: str,
    *,
    remote: bool,
) -> Watch:
    """A watch for a container the monitor has not seen before. The snapshot
    row says whether it was already announced (a runplane restart) and
    whether its probe was failing then."""
    try:
        snapshot = await reporter.snapshots.get(record.runtime_id)
    except Exception:
        snapshot = None
    known = snapshot is not None and snapshot.container_id == container_id
    failing = record.status is Status.ENGINE_UNREACHABLE or (
        known and snapshot is not None and snapshot.summary is HealthSummary.PROBE_FAILED
    )
    tracker = None
    check = probe_of(record, remote=remote)
    if check is not None:
        started = record.started_at or clock.now()
        tracker = ProbeTracker(check, started, failing=failing)
    return Watch(container_id, tracker, announced=known)


async def run_probe(
    prober: Prober,
    reporter: HealthReporter,
    clock: Clock,
    record: RuntimeRecord,
    watch: Watch,
    tracker: ProbeTracker,
) -> None:
    """Probe once; report `probe_failed` / `probe_recovered` when the result
    crosses the threshold. Never raises (logged): the monitor's round goes on."""
    check = tracker.check
    try:
        result = await prober.probe(check, target_of(record, check))
        outcome = "success" if result.ok else "failure"
        PROBE_LATENCY.labels(probe_type=str(check.type), outcome=outcome).observe(result.latency_s)
        event_type = tracker.record(result, clock.now())
        if event_type is None:
            return
        details = {
            "probe": str(check.type),
            "detail": result.detail,
            "consecutive_failures": tracker.consecutive_failures,
            "latency_ms": round(result.latency_s * 1000, 1),
        }
        try:
            await reporter.report(record.runtime_id, record.container_id or "", event_type, details)
        except Exception:
            # Not published: undo, so the next result reports it again.
            tracker.failing = event_type is HealthEventType.PROBE_RECOVERED
            raise
    except Exception as exc:
        logger.warning(
            "health probe failed to run",
            extra={"runtime_id": record.runtime_id, "error": repr(exc)},
            exc_info=exc,
        )
    finally:
        watch.probe = None
