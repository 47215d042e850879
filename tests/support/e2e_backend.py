"""The e2e suite's two backends: one redis-server with SQLite (the default), or
with RUNPLANE_E2E_BACKEND=cluster a 3-node Redis Cluster with PostgreSQL and a
second serve beside every `serve` fixture. Raw Redis access in the e2e tests
goes through `raw_redis` and `redis_cli` so it follows the backend."""

from __future__ import annotations

import os
from typing import Any, cast
from urllib.parse import urlparse

import redis
from redis.cluster import RedisCluster

from tests.support.serve import BACKEND

ENV = "RUNPLANE_E2E_BACKEND"


def backend() -> str:
    """`plain` or `cluster`; anything else is an error, not a silent default."""
    name = os.environ.get(ENV, "plain") or "plain"
    if name not in ("plain", "cluster"):
        raise ValueError(f"{ENV}={name!r}: expected 'plain' or 'cluster'")
    return name


def on_cluster(url: str) -> bool:
    return BACKEND.on_cluster(url)


def raw_redis(url: str, **options: Any) -> redis.Redis:
    """A client for `url`: a cluster client on the e2e cluster (a plain one
    would get MOVED for two thirds of the keys), a plain one otherwise."""
    if on_cluster(url):
        # RedisCluster serves every single-key command the tests use (xadd,
        # xrange, xinfo, hset...); typed as redis.Redis so callers need no union.
        return cast(redis.Redis, RedisCluster.from_url(url, **options))
    return redis.Redis.from_url(url, **options)


def redis_cli(url: str) -> list[str]:
    """The `redis-cli` command line for `url`: `-c` (follow MOVED) on the cluster."""
    parsed = urlparse(url)
    port = str(parsed.port or 6379)
    if on_cluster(url):
        return ["redis-cli", "-c", "-p", port]
    db = parsed.path.lstrip("/") or "0"
    return ["redis-cli", "-p", port, "-n", db]
