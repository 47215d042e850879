"""Building the one redis.asyncio client a process shares, and its failure mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from runplane.adapters.redis.pool import LeanBlockingPool
from runplane.domain.errors import NotReady, StoreUnavailable

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 10.0
"""Longer than any blocking read runplane issues (XREAD/XREADGROUP BLOCK), which must
stay below it, yet short enough that a dead server is noticed."""
SOCKET_CONNECT_TIMEOUT_S = 3.0
HEALTH_CHECK_INTERVAL_S = 15
"""An idle pooled connection is PINGed before reuse once it has been idle this long."""
RETRIES = 3
MAX_CONNECTIONS = 128
POOL_WAIT_S = 10.0
"""How long a command waits for a free pooled connection before it fails."""
RETRY_BACKOFF_BASE_S = 0.05
RETRY_BACKOFF_CAP_S = 0.5

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)
"""What "Redis cannot be reached" looks like; BusyLoadingError is a ConnectionError."""


class _WaitingCluster(RedisCluster):
    """A cluster client whose callers wait for a free connection past
    MAX_CONNECTIONS commands in flight, as the plain client's blocking pool
    makes them: redis-py's cluster nodes raise MaxConnectionsError instead, and
    a crowd of callers (a burst of API calls) would fail."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(MAX_CONNECTIONS)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            # The slot map first, once for all (locked): callers racing into
            # redis-py's own lazy start-up were seen to fail or send twice.
            await self.initialize()
            return await super().execute_command(*args, **kwargs)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        # XREAD and XREADGROUP have "movable keys", which redis-py asks the
        # node for (COMMAND GETKEYS, twice) before every read: two round
        # trips more per read. Their keys are the first half of what follows
        # STREAMS, which is read here instead.
        keys = stream_read_keys(command, args)
        if keys:
            slots = {self.keyslot(key) for key in keys}
            if len(slots) == 1:
                return slots.pop()
        return await super()._determine_slot(command, *args)


_STREAM_READS = {"XREAD": 0, "XREADGROUP": 3}
"""The stream reads, and where their options start (after GROUP group consumer:
a group or consumer named "streams" is not the keyword)."""


def stream_read_keys(command: Any, args: tuple[Any, ...]) -> list[Any] | None:
    """The keys of an XREAD / XREADGROUP (`args` after the command), None for
    any other command or a read whose arguments do not parse."""
    name = command.decode() if isinstance(command, bytes) else str(command)
    options_at = _STREAM_READS.get(name.upper())
    if options_at is None:
        return None
    for index in range(options_at, len(args)):
        arg = args[index]
        word = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
        if word.upper() == "STREAMS":
            rest = args[index + 1 :]
            if not rest or len(rest) % 2:
                return None
            return list(rest[: len(rest) // 2])
    return None


RedisClient = redis.asyncio.Redis
"""What `connect` returns. With `cluster=True` it is a RedisCluster, typed as
Redis: both speak the same commands, and every command runplane sends touches
one slot (docs/deploy.d/e.md), so adapters need not tell them apart. What differs
(the pool, Pub/Sub, CLUSTER INFO) goes through the helpers below."""


def connect(
    url: str,
    *,
    cluster: bool = False,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    socket_connect_timeout_s: float = SOCKET_CONNECT_TIMEOUT_S,
    health_check_interval_s: int = HEALTH_CHECK_INTERVAL_S,
    retries: int = RETRIES,
    decode_responses: bool = True,
) -> RedisClient:
    """A client for `url` (`redis://`, `rediss://` or `unix://`) returning `str`
    (`bytes` with decode_responses=False, as stream consumers need).

    Transient connection errors and timeouts are retried `retries` times with a
    short jittered exponential backoff (a reconnect in between), then raised.
    No I/O happens here: the first command opens the first connection.

    With `cluster=True`, `url` names any node of a Redis Cluster (a seed): the
    client learns the slot map from it and routes each command to its slot's node.
    """
    retry = Retry(
        ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE_S, cap=RETRY_BACKOFF_CAP_S),
        retries,
    )
    if cluster:
        return cast(
            redis.asyncio.Redis,
            _WaitingCluster.from_url(
                url,
                max_connections=MAX_CONNECTIONS,  # per node
                decode_responses=decode_responses,
                protocol=2,
                driver_info=None,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_connect_timeout_s,
                health_check_interval=health_check_interval_s,
                retry=retry,
                retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
            ),
        )
    # A blocking pool: past MAX_CONNECTIONS a caller waits for a free connection
    # instead of failing (the default pool raises MaxConnectionsError under load).
    pool = LeanBlockingPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        decode_responses=decode_responses,
        protocol=2,
        # No CLIENT SETINFO: it costs a round trip and a package-metadata lookup
        # on every new connection, and tells the server nothing it needs.
        driver_info=None,  # the reply shapes runplane parses (streams, XAUTOCLAIM) are RESP2's
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_connect_timeout_s,
        health_check_interval=health_check_interval_s,
        retry=retry,
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )
    client: redis.asyncio.Redis = redis.asyncio.Redis(connection_pool=pool, retry=retry)
    client.auto_close_connection_pool = True  # aclose() closes the pool it owns
    return client


def connect_bytes(url: str, **options: Any) -> RedisClient:
    """A client whose responses stay bytes, as stream consumers need: they decode
    entries themselves, so one entry that is not UTF-8 cannot make a read fail."""
    return connect(url, decode_responses=False, **options)


def is_cluster(client: redis.asyncio.Redis) -> bool:
    return isinstance(client, RedisCluster)


def connection_options(client: redis.asyncio.Redis) -> dict[str, Any]:
    """The options a client's connections are made with (decode_responses,
    protocol, socket_timeout, ...), for a plain client and a cluster alike."""
    if isinstance(client, RedisCluster):
        return dict(client.get_connection_kwargs())
    return dict(client.connection_pool.connection_kwargs)


async def open_pubsub(client: redis.asyncio.Redis) -> redis.asyncio.client.PubSub:
    """A Pub/Sub handle for the live channels. On a cluster it is redis-py's
    ClusterPubSub: it subscribes on the node of the channel's slot, and classic
    PUBLISH (sent to any node) is broadcast to every node, so it hears all. Its
    node comes from the slot map, which is loaded first (before any command,
    redis-py 8.1's ClusterPubSub fails with a KeyError on the empty map)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client.pubsub()


CLUSTER_SLOTS = 16_384


async def check_cluster(client: redis.asyncio.Redis) -> None:
    """Raise NotReady unless every primary says the cluster is whole: state ok
    and all 16,384 slots assigned and served. A node that cannot be reached
    raises NotReady too (its slots are not served)."""
    if not isinstance(client, RedisCluster):
        await client.ping()
        return
    await client.initialize()
    for node in client.get_primaries():
        try:
            raw = await client.execute_command("CLUSTER INFO", target_nodes=node)
        except CONNECTION_ERRORS as exc:
            raise NotReady("cluster node unreachable: its slots are not served") from exc
        info: dict[str, Any] = raw if isinstance(raw, dict) else {}
        state = _text(info.get("cluster_state", "?"))
        served = int(info.get("cluster_slots_ok", 0))
        assigned = int(info.get("cluster_slots_assigned", 0))
        if state != "ok" or served != CLUSTER_SLOTS or assigned != CLUSTER_SLOTS:
            raise NotReady(
                f"cluster_state {state}, {served}/{CLUSTER_SLOTS} slots ok, "
                f"{assigned}/{CLUSTER_SLOTS} assigned"
            )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def unavailable_on_connection_errors(op: str) -> Iterator[None]:
    """Re-raise "cannot reach Redis" as StoreUnavailable; other errors pass through."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        logger.warning("redis unavailable", extra={"op": op, "error": repr(exc)})
        raise StoreUnavailable(f"redis unavailable during {op}: {exc}") from exc
