"""Exit notices: a driver that is told when its containers end (the process
driver's supervisors tell it over a socket), so a watcher looks at what ended
instead of at everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ExitNotices(Protocol):
    @property
    def listening(self) -> bool:
        """Whether ends are being heard now (False: look at every runtime instead)."""

    def listen(self, wake: Callable[[], None]) -> bool:
        """Start hearing ends, on the running event loop; `wake` is called there
        when some are waiting. False when they cannot be heard."""

    def take(self) -> dict[str, str]:
        """The ends heard since the last take: container id -> runtime id. A
        notice says where to look, not what happened: inspect the container."""

    def ended_by_runplane(self, container_id: str) -> bool:
        """runplane ended it here itself (a stop, a remove): no news to report."""
