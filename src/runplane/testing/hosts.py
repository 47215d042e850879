"""A dict-backed HostStore, with the SQL store's semantics (the contract tests
run against both); its events go to an InMemoryOutbox."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from runplane.domain.hosts import (
    Host,
    HostConflict,
    HostStatus,
    HostStatusChange,
    Registration,
    require_host_transition,
)
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.testing.stores import InMemoryOutbox


def _stored(host: Host) -> Host:
    return replace(
        host,
        labels=copy.deepcopy(host.labels),
        registered_at=host.registered_at.astimezone(UTC),
        last_heartbeat_at=host.last_heartbeat_at.astimezone(UTC),
    )


class InMemoryHostStore:
    def __init__(self, outbox: InMemoryOutbox | None = None) -> None:
        self.outbox = outbox if outbox is not None else InMemoryOutbox()
        self._hosts: dict[str, Host] = {}

    async def register(self, host: Host, *, events: Sequence[LifecycleEvent] = ()) -> Registration:
        known = self._hosts.get(host.host_id)
        if known is None:
            self._hosts[host.host_id] = _stored(host)
            self.outbox.add(events)
            return Registration(_stored(host), created=True)
        updated = replace(
            known,
            address=host.address,
            labels=dict(host.labels),
            capacity=host.capacity,
            drivers=tuple(host.drivers),
            version=known.version + 1,
            last_heartbeat_at=host.last_heartbeat_at,
        )
        self._hosts[host.host_id] = _stored(updated)
        return Registration(_stored(updated), created=False)

    async def heartbeat(self, host_id: str, at: datetime) -> Host | None:
        known = self._hosts.get(host_id)
        if known is None:
            return None
        if known.last_heartbeat_at < at:
            known = self._hosts[host_id] = _stored(replace(known, last_heartbeat_at=at))
        return _stored(known)

    async def compare_and_set(
        self, change: HostStatusChange, *, events: Sequence[LifecycleEvent] = ()
    ) -> Host:
        require_host_transition(change.expected_status, change.status, change.admin_status)
        known = self._hosts.get(change.host_id)
        if (
            known is None
            or (known.status, known.version) != (change.expected_status, change.expected_version)
            or (change.expected_status is HostStatus.DOWN and known.admin_status != change.status)
            or (
                change.heartbeat_before is not None
                and not known.last_heartbeat_at < change.heartbeat_before
            )
        ):
            raise HostConflict(change.host_id)
        updated = replace(
            known,
            status=change.status,
            admin_status=change.admin_status,
            version=change.expected_version + 1,
        )
        self._hosts[change.host_id] = updated
        self.outbox.add(events)
        return _stored(updated)

    async def get(self, host_id: str) -> Host | None:
        known = self._hosts.get(host_id)
        return None if known is None else _stored(known)

    async def list(
        self, *, status: HostStatus | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Host]:
        return [
            _stored(host)
            for _, host in sorted(self._hosts.items())
            if (status is None or host.status == status) and host.matches(labels or {})
        ]
