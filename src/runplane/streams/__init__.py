"""The Redis Streams consumer runtime every worker uses.

Group mode (`GroupConsumer`: XREADGROUP, XACK, XAUTOCLAIM, dead letters) and
offset mode (`OffsetConsumer`: XREAD from an OffsetStore position) share one
loop; a handler (`Handler`) gets a decoded `StreamEntry` and returns when done
or raises `RetryLater`.
"""

from __future__ import annotations

from runplane.streams.connection import connect_bytes
from runplane.streams.entries import StreamEntry
from runplane.streams.group import GroupConsumer
from runplane.streams.handler import Handler, KeyFunc, RetryLater, by_runtime_id
from runplane.streams.offset import OffsetConsumer
from runplane.streams.retention import RetentionPolicy, trim
from runplane.streams.settings import DEAD_LETTER_STREAM, ConsumerSettings

__all__ = [
    "DEAD_LETTER_STREAM",
    "ConsumerSettings",
    "GroupConsumer",
    "Handler",
    "KeyFunc",
    "OffsetConsumer",
    "RetentionPolicy",
    "RetryLater",
    "StreamEntry",
    "by_runtime_id",
    "connect_bytes",
    "trim",
]
