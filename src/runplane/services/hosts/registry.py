"""The host registry: hosts register and heartbeat; hosts whose heartbeat is
older than `down_after` are marked `down` (`host.down`), and a heartbeat brings
a down host back to its admin status (`host.up`); admins drain, cordon and
uncordon. Every status write is a compare-and-set committed with its event."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from runplane.domain.errors import RunplaneError
from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import (
    ADMIN_MOVES,
    HOST_DOWN,
    HOST_UP,
    Host,
    HostAction,
    HostConflict,
    HostStatus,
    HostStatusChange,
)
from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.ports.hosts import HostStore
from runplane.ports.system import Clock, TokenGenerator

logger = logging.getLogger(__name__)

MONITOR_ACTOR = Actor("system", "host-monitor")
CAS_ATTEMPTS = 3
"""A status write that loses its compare-and-set reads the host again and retries."""


class HostNotFound(RunplaneError):
    def __init__(self, host_id: str) -> None:
        super().__init__(f"no host {host_id!r}")
        self.host_id = host_id


class HostActionRefused(RunplaneError):
    """The host's status does not allow the action (`invalid_state`)."""


class HostRegistry:
    def __init__(
        self,
        store: HostStore,
        clock: Clock,
        tokens: TokenGenerator,
        *,
        down_after_s: float,
        event_source: str = "/runplane",
    ) -> None:
        if down_after_s <= 0:
            raise ValueError("down_after_s must be positive")
        self.store = store
        self.clock = clock
        self.tokens = tokens
        self.down_after = timedelta(seconds=down_after_s)
        self.event_source = event_source

    async def register(self, details: HostDetails) -> Host:
        """Insert the host `up` (with `host.up`), or refresh a known one's details
        and count this as its heartbeat (a down host comes back, see heartbeat)."""
        now = self.clock.now()
        host = Host(
            host_id=details.host_id,
            address=details.address,
            status=HostStatus.UP,
            admin_status=HostStatus.UP,
            version=1,
            registered_at=now,
            last_heartbeat_at=now,
            labels=dict(details.labels or {}),
            capacity=details.capacity,
            drivers=tuple(details.drivers),
        )
        event = self._event(HOST_UP, host, None, "registered", MONITOR_ACTOR)
        registration = await self.store.register(host, events=[event])
        if registration.created:
            logger.info("host registered", extra={"host_id": host.host_id})
            return registration.host
        return await self._back_if_down(registration.host)

    async def heartbeat(self, host_id: str) -> Host:
        """The host is alive now. HostNotFound if it never registered."""
        host = await self.store.heartbeat(host_id, self.clock.now())
        if host is None:
            raise HostNotFound(host_id)
        return await self._back_if_down(host)

    async def mark_missed(self) -> list[Host]:
        """Mark `down` (with `host.down`) every live host whose last heartbeat is
        older than `down_after`; the hosts marked. A heartbeat landing meanwhile
        wins (the write expects the heartbeat older than the cut-off)."""
        now = self.clock.now()
        marked = []
        for host in await self.store.list():
            if host.status is HostStatus.DOWN or not host.heartbeat_missed(now, self.down_after):
                continue
            change = HostStatusChange(
                host.host_id,
                host.status,
                host.version,
                HostStatus.DOWN,
                host.admin_status,
                now,
                heartbeat_before=now - self.down_after,
            )
            event = self._event(HOST_DOWN, host, change, "heartbeat_missed", MONITOR_ACTOR)
            try:
                marked.append(await self.store.compare_and_set(change, events=[event]))
            except HostConflict:
                continue  # it heartbeated, or an admin moved it: looked at next round
            logger.warning(
                "host down: heartbeats missed",
                extra={"host_id": host.host_id, "last_heartbeat_at": host.last_heartbeat_at},
            )
        return marked

    async def act(self, host_id: str, action: HostAction, *, actor: Actor) -> Host:
        """Drain, cordon or uncordon. The status asked for, when the host has it
        already, changes nothing. HostNotFound; HostActionRefused for a down host."""
        target = ADMIN_MOVES[action]
        for _ in range(CAS_ATTEMPTS):
            host = await self.get(host_id)
            if host.status is HostStatus.DOWN:
                raise HostActionRefused(
                    f"host {host_id!r} is down: {action} it once it heartbeats again "
                    f"(it comes back {host.admin_status})"
                )
            if host.status is target:
                return host
            change = HostStatusChange(
                host_id, host.status, host.version, target, target, self.clock.now()
            )
            try:
                moved = await self.store.compare_and_set(change)
            except HostConflict:
                continue
            logger.info(
                "host status set by an admin",
                extra={
                    "host_id": host_id,
                    "status_from": host.status,
                    "status_to": target,
                    "actor": actor.id,
                },
            )
            return moved
        raise HostConflict(host_id)

    async def get(self, host_id: str) -> Host:
        host = await self.store.get(host_id)
        if host is None:
            raise HostNotFound(host_id)
        return host

    async def list(
        self, *, status: HostStatus | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Host]:
        return await self.store.list(status=status, labels=labels)

    async def _back_if_down(self, host: Host) -> Host:
        """A down host that heartbeats returns to what its admin last set: `up`,
        or still `draining` / `cordoned`, with `host.up`."""
        for _ in range(CAS_ATTEMPTS):
            if host.status is not HostStatus.DOWN:
                return host
            change = HostStatusChange(
                host.host_id,
                HostStatus.DOWN,
                host.version,
                host.admin_status,
                host.admin_status,
                self.clock.now(),
            )
            event = self._event(HOST_UP, host, change, "heartbeat", MONITOR_ACTOR)
            try:
                back = await self.store.compare_and_set(change, events=[event])
            except HostConflict:
                host = await self.get(host.host_id)
                continue
            logger.info("host back", extra={"host_id": host.host_id, "status": back.status})
            return back
        return host

    def _event(
        self,
        event_type: str,
        host: Host,
        change: HostStatusChange | None,
        reason: str,
        actor: Actor,
    ) -> LifecycleEvent:
        """A host event: subject and `host_id` the host, no team (so no team key
        ever reads it), the host's address and labels in `metadata`."""
        return LifecycleEvent(
            id=self.tokens.new_token(),
            type=event_type,
            runtime_id=host.host_id,
            time=self.clock.now(),
            sequence=change.expected_version + 1 if change else host.version,
            outcome="success",
            team_id=None,
            actor=actor,
            source=self.event_source,
            status_from=str(change.expected_status) if change else None,
            status_to=str(change.status) if change else str(host.status),
            reason=reason,
            metadata={**host.labels, "address": host.address},
            host_id=host.host_id,
            resource_type="host",
        )
