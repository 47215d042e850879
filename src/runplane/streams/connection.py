"""A Redis client fit for stream consumers: responses stay bytes.

Consumers decode entries themselves (see entries.py), so one entry that is not
UTF-8 cannot make a read fail."""

from __future__ import annotations

from typing import Any

import redis.asyncio

from runplane.adapters.redis.client import connect


def connect_bytes(url: str, **options: Any) -> redis.asyncio.Redis:
    """A client for `url` that returns bytes; otherwise like `connect` (same options)."""
    return connect(url, decode_responses=False, **options)
