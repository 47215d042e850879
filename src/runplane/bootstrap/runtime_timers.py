"""Issue 16's parts: the settings service the API uses, and the leader-only
loop that fires timeouts and idle rules."""

from __future__ import annotations

from runplane.adapters.drivers.connections import LocalConnections
from runplane.adapters.redis.names import TIMERS_LEASE
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.runtime_settings import SqlRuntimeSettings
from runplane.config import Settings
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_ops.idle import ConnectionProbe, IdleWatcher
from runplane.services.runtime_ops.settings import RuntimeSettingsService
from runplane.services.runtime_ops.timeouts import TimeoutFirer
from runplane.workers.leadership import Leadership
from runplane.workers.runtime_timers import RuntimeTimersLoop


def build_runtime_timers(
    settings: Settings, database: SqlDatabase, lifecycle: Lifecycle, deps: Dependencies
) -> tuple[RuntimeSettingsService, RuntimeTimersLoop]:
    store = SqlRuntimeSettings(database)
    local = LocalConnections(deps.drivers) if deps.local_host_id is not None else None
    idle = IdleWatcher(
        lifecycle,
        store,
        deps.clock,
        ConnectionProbe(local, deps.router),
        floor_s=settings.idle_check_floor_s,
        cap_s=settings.idle_check_cap_s,
    )
    loop = RuntimeTimersLoop(
        TimeoutFirer(lifecycle, store, deps.clock),
        idle,
        Leadership(deps.leases, deps.tokens, TIMERS_LEASE, ttl_ms=settings.leader_ttl_ms),
        interval_s=settings.timers_interval_s,
        idle_wait_max_s=settings.timers_idle_wait_max_s,
    )
    service = RuntimeSettingsService(store, deps.runtimes, deps.clock, on_change=loop.wake)
    return service, loop
