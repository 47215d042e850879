"""Routing driver calls to hosts (docs/hosts.md): a runtime on this instance's
own host is driven here; one on any other host through that host's agent."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from runplane.domain.hosts import HostStatus
from runplane.ports.drivers import Driver
from runplane.ports.host_calls import HostCallSender
from runplane.ports.hosts import HostStore
from runplane.services.remote_driver import RemoteDriver

DriverRoute = Callable[[str | None, str], Driver | None]
"""(host_id, driver name) -> the driver acting there, or None (`DriverRouter.driver`)."""


class HostRouter:
    """A `DriverRouter`. `local`: this instance's drivers; they act on
    `local_host_id`'s runtimes, and validate specs of their kind for every host
    (a validation only reads the spec; the agent validates again)."""

    def __init__(
        self,
        local_host_id: str | None,
        local: Mapping[str, Driver],
        sender: HostCallSender,
        *,
        call_timeout_s: float = 30.0,
        remote: Callable[..., Driver] = RemoteDriver,
    ) -> None:
        self.local_host_id = local_host_id
        self._local = local
        self._sender = sender
        self._call_timeout_s = call_timeout_s
        self._remote = remote
        self._remotes: dict[tuple[str, str], Driver] = {}

    def driver(self, host_id: str | None, name: str) -> Driver | None:
        if host_id is None or host_id == self.local_host_id:
            # No host recorded: a record from before hosts, run where it was made.
            return self._local.get(name) if self.local_host_id is not None else None
        key = (host_id, name)
        driver = self._remotes.get(key)
        if driver is None:
            validator = self._local.get(name)
            if validator is None:
                return None  # a kind this instance cannot even validate
            driver = self._remote(
                name,
                host_id,
                self._sender,
                validator.validate_spec,
                call_timeout_s=self._call_timeout_s,
            )
            self._remotes[key] = driver
        return driver


class HostDirectory:
    """What the health monitor and the reconciler ask of hosts once per round."""

    def __init__(self, hosts: HostStore) -> None:
        self._hosts = hosts

    async def unreachable(self) -> frozenset[str]:
        """Hosts whose runtimes cannot be looked at now (down)."""
        return frozenset(h.host_id for h in await self._hosts.list(status=HostStatus.DOWN))

    async def reachable(self) -> dict[str, tuple[str, ...]]:
        """Every host that is not down, with the drivers it offers."""
        return {
            h.host_id: tuple(h.drivers)
            for h in await self._hosts.list()
            if h.status is not HostStatus.DOWN
        }
