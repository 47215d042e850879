"""What long-lived calls one key may hold on this instance (in memory, per
instance: a key may hold the bound on each instance behind a load balancer),
and one shared store read for every wait on the same runtime."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from runplane.api.limits import RateLimited
from runplane.domain.api_keys import ApiKey

T = TypeVar("T")

RETRY_AFTER_S = 1.0
"""What a caller past its bound is told to wait: one of its calls may end any time."""


def _nothing() -> None:
    return None


class KeySlots:
    """At most `limit` concurrent holders per team key; 0 means no bound. Admin
    keys are not bound (operators and their tools, like bench/sse.py)."""

    def __init__(self, what: str, limit: int) -> None:
        self._what = what
        self._limit = limit
        self._held: Counter[str] = Counter()

    def held(self, key_id: str) -> int:
        return self._held[key_id]

    def take(self, key: ApiKey) -> Callable[[], None]:
        """Take a slot or raise RateLimited; returns the release (idempotent)."""
        if key.admin:
            return _nothing
        key_id = key.key_id
        if self._limit and self._held[key_id] >= self._limit:
            raise RateLimited(
                f"this key already holds {self._limit} concurrent {self._what} on this instance",
                RETRY_AFTER_S,
            )
        self._held[key_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[key_id] -= 1
                if self._held[key_id] <= 0:
                    del self._held[key_id]

        return release

    @contextmanager
    def hold(self, key: ApiKey) -> Iterator[None]:
        release = self.take(key)
        try:
            yield
        finally:
            release()


class SharedReads(Generic[T]):
    """One read per name per `interval_s`, shared by every concurrent caller: a
    thousand waits on one runtime cost the store one read per interval."""

    PRUNE_AT = 1024

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._recent: dict[str, tuple[float, asyncio.Future[T]]] = {}

    async def read(
        self, name: str, read: Callable[[], Awaitable[T]], *, since: float | None = None
    ) -> T:
        """A read started at most `interval_s` ago, and not before `since`
        (time.monotonic()) when given: a caller's first look sees its own present."""
        now = time.monotonic()
        found = self._recent.get(name)
        oldest = now - self._interval_s if since is None else max(since, now - self._interval_s)
        if found is None or found[0] < oldest:
            if len(self._recent) >= self.PRUNE_AT:
                self._prune(now)
            task = asyncio.ensure_future(read())
            # Retrieved even when every caller was cancelled: no "never retrieved" log.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            found = (now, task)
            self._recent[name] = found
        # Shielded: one cancelled caller does not cancel the read the others await.
        return await asyncio.shield(found[1])

    def _prune(self, now: float) -> None:
        for name, (at, _) in list(self._recent.items()):
            if now - at >= self._interval_s:
                del self._recent[name]
