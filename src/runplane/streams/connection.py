"""A Redis client fit for stream consumers: responses stay bytes.

Consumers decode entries themselves (see entries.py), so one entry that is not
UTF-8 cannot make a read fail."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import connect


def connect_bytes(url: str) -> redis.asyncio.Redis:
    """A client for `url` that returns bytes; otherwise like `connect`."""
    return connect(url, decode_responses=False)
