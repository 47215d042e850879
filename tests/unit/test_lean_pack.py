"""Commands packed by hiredis (lean_send.py) are byte for byte what redis-py
packs, and what hiredis would pack differently is left to redis-py."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions
from redis.asyncio.connection import Connection

from runplane.adapters.redis.lean_send import lean_connection_class

CASES: list[tuple[Any, ...]] = [
    ("XACK", "jobs:stop", "group", "1-0", "1700000000000-12"),
    ("SET", b"lease:{rt-1}", "token", "PX", 30_000, "NX"),
    ("XADD", "results", "*", "job_id", "é ü 日本", "raw", b"\xff\x00 bytes"),
    ("EVAL", "return 1", 1, "k", -5, 2**70),
    ("CONFIG GET", "maxmemory"),  # redis-py splits the name in two
    (b"CLIENT SETNAME", b"x"),
    ("INCRBYFLOAT", "k", 1.5),  # a float: redis-py's repr()
    ("SET", "k", memoryview(b"viewed")),
]


@pytest.mark.parametrize("args", CASES)
def test_the_packed_bytes_are_redis_pys(args: tuple[Any, ...]) -> None:
    plain = Connection()
    lean = lean_connection_class(Connection)()
    assert b"".join(lean.pack_command(*args)) == b"".join(plain.pack_command(*args))


def test_a_bool_is_refused_as_redis_py_refuses_it() -> None:
    lean = lean_connection_class(Connection)()
    with pytest.raises(redis.exceptions.DataError):
        lean.pack_command("SET", "k", True)


def test_another_encoding_is_packed_by_redis_py() -> None:
    plain = Connection(encoding="latin-1")
    lean = lean_connection_class(Connection)(encoding="latin-1")
    args = ("SET", "k", "é")
    assert b"".join(lean.pack_command(*args)) == b"".join(plain.pack_command(*args))
    assert b"".join(lean.pack_command(*args)).endswith(b"$1\r\n\xe9\r\n")
