"""What the host monitor asks of host-loss handling (services/hosts/loss.py),
as it marks a host down and before it lets a down host back up."""

from __future__ import annotations

from typing import Protocol

from runplane.domain.hosts import Host


class HostLossHooks(Protocol):
    async def on_down(self, host: Host) -> None:
        """Called for each host the monitor has just marked `down` (missed heartbeats)."""

    async def before_up(self, host_id: str) -> bool:
        """Called before a `down` host is marked back up: True to go ahead,
        False to keep it down and ask again on the next tick."""
