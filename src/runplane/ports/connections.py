"""Counting the connections open to a runtime's declared ports, on its host
(the idle rule, issue 16)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runplane.domain.connection_calls import PortsOf


class ConnectionCounter(Protocol):
    async def count(self, driver: str, items: Sequence[PortsOf]) -> list[int | None]:
        """For each item, how many established TCP connections have one of its
        ports as their local port, in the runtime's network namespace; None
        where that cannot be seen (container gone, namespace not readable)."""
