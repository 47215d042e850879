"""The keys of a stream read, found without asking the cluster node
(adapters/redis/client.py): the first half of what follows STREAMS."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.adapters.redis.client import stream_read_keys


@pytest.mark.parametrize(
    ("command", "args", "keys"),
    [
        ("XREAD", ("STREAMS", "s1", "0"), ["s1"]),
        ("XREAD", ("COUNT", 10, "BLOCK", 500, "STREAMS", "a", "b", "0", "$"), ["a", "b"]),
        (b"xread", (b"count", b"5", b"streams", b"s", b"0"), [b"s"]),
        ("XREADGROUP", ("GROUP", "g", "c", "COUNT", 1, "STREAMS", "jobs", ">"), ["jobs"]),
        # A group or consumer named like the keyword is not the keyword.
        ("XREADGROUP", ("GROUP", "streams", "STREAMS", "STREAMS", "k", ">"), ["k"]),
        # A stream named like the keyword is a key.
        ("XREAD", ("STREAMS", "STREAMS", "0"), ["STREAMS"]),
    ],
)
def test_the_keys_are_the_first_half_after_streams(
    command: Any, args: tuple[Any, ...], keys: list[Any]
) -> None:
    assert stream_read_keys(command, args) == keys


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("GET", ("STREAMS",)),
        ("XREAD", ("COUNT", 1)),
        ("XREAD", ("STREAMS",)),
        ("XREAD", ("STREAMS", "a", "b", "0")),  # odd: not a read Redis would take
        ("XREADGROUP", ("GROUP", "g", "STREAMS")),
    ],
)
def test_anything_else_is_left_to_redis_py(command: str, args: tuple[Any, ...]) -> None:
    assert stream_read_keys(command, args) is None
