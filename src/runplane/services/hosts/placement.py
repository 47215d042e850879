"""Placement (ports/hosts.py HostPlacement): the host a new or moving runtime
goes to, chosen by domain/placement.py from the hosts and their live counts as
they are now.

Every choice reads twice (every host, then the live count per host, one GROUP
BY) and caches nothing: hosts are few, and a stale count would pile a burst
of creates on one host more surely than the random tie-break spreads them."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Mapping
from typing import Any

from runplane.domain.hosts import HostStatus, NoHostAvailable
from runplane.domain.placement import choose_host, placement_of, why_none
from runplane.ports.hosts import HostStore
from runplane.ports.lifecycle import RuntimeStore

logger = logging.getLogger(__name__)


class Placement:
    def __init__(
        self,
        hosts: HostStore,
        runtimes: RuntimeStore,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._hosts = hosts
        self._runtimes = runtimes
        self._rand = rand

    async def choose(
        self, driver: str, spec: Mapping[str, Any], *, exclude: Collection[str] = ()
    ) -> str:
        """The chosen host's id. NoHostAvailable says why none fits; InvalidSpec
        when the spec's `placement` is malformed (a stored spec was checked
        when it was created, so only for a caller's own spec)."""
        wanted = placement_of(spec)
        selector, pinned = wanted.host_labels, wanted.host_id
        # Every host, not only the up ones: the reason names what the others are.
        hosts = await self._hosts.list()
        live = await self._runtimes.count_live_by_host()
        host = choose_host(
            hosts,
            live,
            driver=driver,
            selector=selector,
            exclude=exclude,
            rand=self._rand,
            host_id=pinned,
        )
        if host is None:
            reason = why_none(
                hosts, live, driver=driver, selector=selector, exclude=exclude, host_id=pinned
            )
            raise NoHostAvailable(f"no host can take a {driver} runtime: {reason}")
        logger.debug(
            "host chosen",
            extra={"host_id": host.host_id, "driver": driver, "live": live.get(host.host_id, 0)},
        )
        return host.host_id

    async def status_of(self, host_id: str) -> HostStatus | None:
        host = await self._hosts.get(host_id)
        return None if host is None else host.status
