"""A blocking connection pool whose common case (a connection is free) is cheap.

redis-py's BlockingConnectionPool takes its condition, arms a timeout and goes
through its observability hooks on every command, free connection or not: in
py-spy stacks of `runplane serve` under REST load this was about 60% of the
CPU of each Redis command (some 11% of the server's), where the command's own
send and parse were a third. The pool below hands out a free connection
without waiting on anything, keeps redis-py's own check of it
(`ensure_connection`: connected, else reopened), and only when
none is free falls back to redis-py's wait (callers queue for up to the pool's
timeout, then fail, as before). A release puts the connection back and wakes
one waiter, as redis-py's does; the release event and metrics it also emits
are for RESP3 maintenance notifications and OpenTelemetry, which runplane does
not use (it speaks RESP2 and has no Redis tracing)."""

from __future__ import annotations

from typing import Any

import redis.asyncio
from redis.asyncio.connection import AbstractConnection

from runplane.adapters.redis.lean_send import lean_connection_class


class LeanBlockingPool(redis.asyncio.BlockingConnectionPool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The class the URL chose, sending without a task per write (lean_send.py).
        self.connection_class = lean_connection_class(self.connection_class)

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        free = self._available_connections
        if not free or self._in_maintenance:
            return await super().get_connection()  # type: ignore[no-untyped-call,no-any-return]
        # No await between the check and the pop: no other task can take it.
        connection = free.pop()
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        async with self._condition:
            self._in_use_connections.remove(connection)
            if connection.should_reconnect():  # type: ignore[no-untyped-call]
                await connection.disconnect()
            self._available_connections.append(connection)
            self._condition.notify()
