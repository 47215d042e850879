"""A HostLossHooks for tests: it records each call with the host's stored
status at that moment (so a test sees what ran before which write)."""

from __future__ import annotations

from runplane.domain.hosts import Host, HostStatus
from runplane.ports.hosts import HostStore


class FakeHooks:
    """Records every call, and what the host store held when it was made."""

    def __init__(self, store: HostStore) -> None:
        self.store = store
        self.calls: list[tuple[str, str, HostStatus | None]] = []
        self.allow_up = True
        self.fail_down = False
        self.fail_up = False

    async def on_down(self, host: Host) -> None:
        self.calls.append(("on_down", host.host_id, await self._status(host.host_id)))
        if self.fail_down:
            raise RuntimeError("on_down broke")

    async def before_up(self, host_id: str) -> bool:
        self.calls.append(("before_up", host_id, await self._status(host_id)))
        if self.fail_up:
            raise RuntimeError("before_up broke")
        return self.allow_up

    async def _status(self, host_id: str) -> HostStatus | None:
        host = await self.store.get(host_id)
        return host.status if host else None
