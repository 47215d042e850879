"""The Redis Streams consumer runtime every worker uses.

Group mode (`GroupConsumer`: XREADGROUP, XACK, XAUTOCLAIM, dead letters) and
offset mode (`OffsetConsumer`: XREAD from an OffsetStore position) share one
loop; a handler (`Handler`) gets a decoded `StreamEntry` and returns when done
or raises `RetryLater`.
"""

from __future__ import annotations

from runplane.streams.entries import StreamEntry
from runplane.streams.group import GroupConsumer
from runplane.streams.handler import Handler, KeyFunc, RetryLater, by_runtime_id
from runplane.streams.offset import OffsetConsumer
from runplane.streams.retention import RetentionPolicy, trim
from runplane.streams.settings import ConsumerSettings

__all__ = [
    "ConsumerSettings",
    "GroupConsumer",
    "Handler",
    "KeyFunc",
    "OffsetConsumer",
    "RetentionPolicy",
    "RetryLater",
    "StreamEntry",
    "by_runtime_id",
    "trim",
]
