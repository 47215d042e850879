"""Host records: where hosts register, heartbeat and change status."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import Host, HostStatus, HostStatusChange, Registration
from runplane.domain.lifecycle_events import LifecycleEvent


class HostStore(Protocol):
    """Host records. Status writes are compare-and-sets (HostStatusChange) gated
    by the host transition table in the store itself; each commits its events
    to the outbox in the same transaction."""

    async def register(self, host: Host, *, events: Sequence[LifecycleEvent] = ()) -> Registration:
        """Insert `host` and put `events` in the outbox, in one transaction; or,
        when its id is taken, update the address, labels, capacity, drivers and
        last heartbeat, keeping status, admin status, registered_at, and writing
        no events (`created` False). The version moves either way."""

    async def heartbeat(self, host_id: str, at: datetime) -> Host | None:
        """Set the last heartbeat to `at` (never backwards); the version stays.
        None when no such host."""

    async def compare_and_set(
        self, change: HostStatusChange, *, events: Sequence[LifecycleEvent] = ()
    ) -> Host:
        """Apply `change` and put `events` in the outbox, one transaction.
        InvalidHostTransition (nothing written) for a move the table refuses;
        HostConflict when no row matches (status, version, or a heartbeat not
        older than `heartbeat_before`)."""

    async def get(self, host_id: str) -> Host | None: ...

    async def list(
        self, *, status: HostStatus | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Host]:
        """Every host with `status` and all of `labels`, by host_id."""


class HostPlacement(Protocol):
    """Where runtimes go (services/hosts/placement.py; docs/hosts.md)."""

    async def choose(
        self, driver: str, spec: Mapping[str, Any], *, exclude: Collection[str] = ()
    ) -> str:
        """The host a new (or moving) runtime goes to: up, offering `driver`,
        matching the spec's `placement.host_labels`, with room, least loaded;
        never one in `exclude`. Raises NoHostAvailable with a readable reason."""

    async def status_of(self, host_id: str) -> HostStatus | None:
        """The host's status now; None for a host that is not registered."""


class HostBeats(Protocol):
    """Agents' heartbeats, over Redis (agents have no database): each beat says
    the host is alive, with its details, for `ttl_s`; the host monitor reads
    them and writes the host records (docs/hosts.md)."""

    async def beat(self, details: HostDetails, ttl_s: float) -> None: ...

    async def read(self) -> dict[str, HostDetails]:
        """The details of every host whose beat has not expired, by host id.
        A beat that is not a clean host is logged and left out."""
