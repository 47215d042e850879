"""Health on Redis: publishing to `runtime:health_events` and a bounded look
back over it, and the `runtime:snapshots` stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.typing import FieldT

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import HEALTH_EVENTS_STREAM, SNAPSHOTS_STREAM
from runplane.adapters.redis.passed_over import pass_over
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import (
    MalformedHealthEvent,
    RuntimeSnapshot,
    decode_health_event,
)
from runplane.domain.seed_layout import SEED_ID_FIELD, snapshot_fields


class RedisHealthEventPublisher:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str = HEALTH_EVENTS_STREAM,
        max_len: int | None = 1_000_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_len = max_len

    async def publish(self, event: HealthEvent) -> None:
        fields: dict[FieldT, FieldT] = {k: v for k, v in event.as_fields().items()}  # noqa: C416
        with unavailable_on_connection_errors("publish health event"):
            await self.client.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)


DEFAULT_LOOK_BACK = 2_000
"""How many of the newest health events `recent` looks through."""


class RedisSnapshotPublisher:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str = SNAPSHOTS_STREAM,
        max_len: int | None = 1_000_000,
        *,
        entry_type: str = "",
        seed_layout: bool = False,
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_len = max_len
        self.entry_type = entry_type
        self.seed_layout = seed_layout

    def _fields(self, snapshot: RuntimeSnapshot) -> dict[FieldT, FieldT]:
        fields = snapshot_fields(
            snapshot.as_fields(), seed=self.seed_layout, entry_type=self.entry_type
        )
        return dict(fields.items())

    async def publish(self, snapshot: RuntimeSnapshot) -> None:
        fields = self._fields(snapshot)
        with unavailable_on_connection_errors("publish runtime snapshot"):
            await self.client.xadd(
                self.stream, fields, maxlen=self.max_len, approximate=self.max_len is not None
            )

    async def publish_many(self, snapshots: Sequence[RuntimeSnapshot]) -> None:
        if not snapshots:
            return
        with unavailable_on_connection_errors("publish runtime snapshots"):
            async with self.client.pipeline(transaction=False) as pipe:
                for snapshot in snapshots:
                    pipe.xadd(
                        self.stream,
                        self._fields(snapshot),
                        maxlen=self.max_len,
                        approximate=self.max_len is not None,
                    )
                await pipe.execute()


class RedisHealthEventReader:
    """A runtime's latest events among the stream's newest `look_back` entries:
    enough for "what happened lately", never a scan of the whole stream.

    Give it a `bytes` client (decode_responses=False): a `str` client fails the
    whole read on one non-UTF-8 entry. An entry of the runtime that does not
    decode is passed over (adapters/redis/passed_over.py)."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str = HEALTH_EVENTS_STREAM,
        look_back: int = DEFAULT_LOOK_BACK,
    ) -> None:
        self.client = client
        self.stream = stream
        self.look_back = look_back

    async def recent(self, runtime_id: str, *, limit: int = 20) -> list[HealthEvent]:
        with unavailable_on_connection_errors("read health events"):
            entries: Any = await self.client.xrevrange(self.stream, count=self.look_back)
        events: list[HealthEvent] = []
        for raw_id, raw_fields in entries:
            raw_runtime_id = _named_runtime(raw_fields)
            if raw_runtime_id not in (runtime_id, runtime_id.encode()):
                continue  # another runtime's: not decoded at all
            try:
                fields = {_text(k): _text(v) for k, v in raw_fields.items()}
                events.append(decode_health_event(fields))
            except (MalformedHealthEvent, UnicodeDecodeError) as exc:
                pass_over(self.stream, _text(raw_id), str(exc))
                continue
            if len(events) >= limit:
                break
        return events


def _named_runtime(raw_fields: Any) -> bytes | str | None:
    """The runtime an entry names, as `runtime_id` or the seeds' `game_id`."""
    for name in ("runtime_id", SEED_ID_FIELD):
        value = raw_fields.get(name.encode(), raw_fields.get(name))
        if value:
            return value  # type: ignore[no-any-return]
    return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
