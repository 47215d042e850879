"""Where a test's Redis is: a plain redis-server or a 3-node Redis Cluster, where
any command crossing slots would fail (CROSSSLOT, MOVED). Tests that take the
`redis_target` fixture run on both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio

from runplane.adapters.redis.client import connect


@dataclass(frozen=True)
class RedisTarget:
    """Where a contract test's Redis is, and how runplane connects to it."""

    url: str
    port: int
    cluster: bool

    def connect(self, *, db: int = 0, **options: Any) -> redis.asyncio.Redis:
        """A client as runplane builds one; `db` is ignored on a cluster (db 0 only)."""
        if self.cluster:
            return connect(self.url, cluster=True, **options)
        return connect(f"redis://127.0.0.1:{self.port}/{db}", **options)
