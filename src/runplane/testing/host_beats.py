"""Agents' beats in a dict (no expiry: a test ends a host's beat by hand)."""

from __future__ import annotations

from runplane.domain.host_details import HostDetails


class InMemoryHostBeats:
    def __init__(self) -> None:
        self.beating: dict[str, HostDetails] = {}

    async def beat(self, details: HostDetails, ttl_s: float) -> None:
        self.beating[details.host_id] = details.check()

    async def read(self) -> dict[str, HostDetails]:
        return dict(self.beating)

    def expire(self, host_id: str) -> None:
        """The beat key's TTL ran out: the agent stopped beating."""
        self.beating.pop(host_id, None)
