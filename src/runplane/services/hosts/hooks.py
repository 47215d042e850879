"""What host loss does to runtimes, called by the host monitor (another module
implements it: stopping what moved away, rescheduling)."""

from __future__ import annotations

from typing import Protocol

from runplane.domain.hosts import Host


class HostLossHooks(Protocol):
    async def on_down(self, host: Host) -> None:
        """`host` was just marked down. Raising: called again next look."""

    async def before_up(self, host_id: str) -> bool:
        """A down host beats again: True lets it come back now; False (or a
        raise) leaves it down this look, and it is asked again next look."""


class NoHostLossHooks:
    """The default: nothing happens to runtimes, a host comes back at once."""

    async def on_down(self, host: Host) -> None:
        return None

    async def before_up(self, host_id: str) -> bool:
        return True
