"""Drivers: what runs a runtime (a process, a container) on a host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from runplane.domain.drivers import ContainerInfo, StartedContainer
from runplane.domain.runtime_output import LogChunk, LogQuery, MetricsWindow


class Driver(Protocol):
    """Runs runtimes: OS processes, containers. Raises ContainerGone when the
    container no longer exists, DriverError when the engine fails."""

    name: str

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The normalised spec; raises InvalidSpec with a readable message."""

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer: ...

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        """Stop gracefully, then kill past the timeout. Returns the final state."""

    async def pause(self, container_id: str) -> None: ...

    async def resume(self, container_id: str) -> None: ...

    async def remove(self, container_id: str) -> None:
        """Forget the container and its files; a missing one is not an error."""

    async def inspect(self, container_id: str) -> ContainerInfo: ...

    async def list_containers(self) -> Sequence[ContainerInfo]:
        """Every container this driver manages, live or exited (for adoption)."""

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        """One bounded read of the container's kept stdout and stderr (see
        `LogQuery`); ContainerGone when nothing of it is kept; BadOutputQuery for
        a cursor it did not make."""

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        """Its resource samples of the last `window_s`, taken on its host; it is
        sampled from now on for a while (a first call samples at once)."""


class DriverRouter(Protocol):
    """Which driver acts for a runtime: the local one for this instance's own
    host, a `RemoteDriver` (its host's agent) for any other (docs/hosts.md)."""

    local_host_id: str | None
    """The host this instance runs runtimes on itself; None when it runs none."""

    def driver(self, host_id: str | None, name: str) -> Driver | None:
        """The `name` driver of `host_id` (None: the local host); None when that
        host cannot be reached from here or this kind is not known."""
