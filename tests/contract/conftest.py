"""The Redis contract tests run twice: on a plain redis-server and on a 3-node
Redis Cluster, where any command crossing slots would fail (CROSSSLOT, MOVED)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from tests.support.redis import RedisServer
from tests.support.redis_cluster import RedisClusterServer


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


@pytest.fixture(params=["plain", "cluster"])
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    if request.param == "cluster":
        cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
        return RedisTarget(cluster.url, cluster.ports[0], cluster=True)
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisTarget(server.url, server.port, cluster=False)
