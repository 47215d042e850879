"""Stream reads on a real Redis Cluster go straight to their key's node: no
COMMAND GETKEYS round trip before each one (adapters/redis/client.py), and
every read still finds its entries, wherever the streams live."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
import redis
import redis.asyncio

from runplane.adapters.redis.client import connect
from tests.support.redis_cluster import RedisClusterServer
from tests.support.streams import unique


def getkeys_calls(cluster: RedisClusterServer) -> int:
    calls = 0
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            stats = node.info("commandstats")
        calls += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return calls


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_cluster: RedisClusterServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_cluster.url, cluster=True, decode_responses=False)
    yield client
    await client.aclose()


async def test_reads_find_their_entries_without_asking_the_node_for_keys(
    redis_cluster: RedisClusterServer, client: redis.asyncio.Redis
) -> None:
    # Streams on different nodes (no shared hash tag), one named like the keyword.
    streams = [unique("jobs"), unique("events"), "STREAMS-" + unique("x")]
    written = {name: (await client.xadd(name, {"n": name})) for name in streams}
    for name in streams:
        await client.xgroup_create(name, "streams", id="0")
    before = getkeys_calls(redis_cluster)

    for name in streams:
        read = await client.xread({name: "0"}, count=10)
        assert [entry_id for entry_id, _ in read[0][1]] == [written[name]]
        grouped = await client.xreadgroup("streams", "STREAMS", {name: ">"}, count=10)
        assert [entry_id for entry_id, _ in grouped[0][1]] == [written[name]]

    assert getkeys_calls(redis_cluster) == before
