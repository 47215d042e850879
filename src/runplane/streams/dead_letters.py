"""The dead-letter stream: entries that failed too often, and their management.

A dead letter is an entry of `runtime:dead_letters` with the fields `stream`,
`entry_id`, `fields` (JSON object of the original fields), `error` and
`deliveries`. The helpers below work with a client that decodes responses or
one that does not. Replaying adds the original fields back to their stream (a
new entry id) and then deletes the dead letter; a crash between the two leaves
both, so a dead letter may be replayed twice — handlers are idempotent by
`job_id` for this reason among others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis.asyncio

from runplane.domain.dead_letters import DeadLetter, DeadLetterNotFound, DeadLetterUnreplayable
from runplane.domain.event_reading import is_stream_id
from runplane.streams.entries import StreamEntry, decode_text
from runplane.streams.settings import DEAD_LETTER_STREAM

__all__ = [
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterUnreplayable",
    "dead_letter_fields",
    "drop_dead_letter",
    "get_dead_letter",
    "list_dead_letters",
    "parse_dead_letter",
    "replay_dead_letter",
]

MAX_ERROR_CHARS = 2_000
"""An error message is cut to this length: a dead letter is for a person to
read, and a runaway message must not bloat the stream."""


def dead_letter_fields(entry: StreamEntry, error: str) -> dict[str, str]:
    """The fields a dead letter of `entry` carries."""
    return {
        "stream": entry.stream,
        "entry_id": entry.entry_id,
        "fields": json.dumps(entry.fields, ensure_ascii=False),
        "error": error[:MAX_ERROR_CHARS],
        "deliveries": str(entry.deliveries),
    }


def parse_dead_letter(dead_letter_id: bytes | str, raw: Mapping[Any, Any]) -> DeadLetter:
    """A DeadLetter from a raw entry; missing or malformed parts come out empty."""
    values = {decode_text(k)[0]: decode_text(v)[0] for k, v in raw.items()}
    try:
        loaded = json.loads(values.get("fields", "{}"))
    except ValueError:
        loaded = {}
    fields = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    deliveries = values.get("deliveries", "0")
    return DeadLetter(
        id=decode_text(dead_letter_id)[0],
        stream=values.get("stream", ""),
        entry_id=values.get("entry_id", ""),
        fields=fields,
        error=values.get("error", ""),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
    )


async def list_dead_letters(
    client: redis.asyncio.Redis,
    *,
    dead_letter_stream: str = DEAD_LETTER_STREAM,
    after: str | None = None,
    count: int = 100,
) -> list[DeadLetter]:
    """Oldest first; `after` is the last id of the previous page."""
    start = "-" if after is None else "(" + after
    entries: Any = await client.xrange(dead_letter_stream, min=start, max="+", count=count)
    return [parse_dead_letter(entry_id, raw) for entry_id, raw in entries or []]


async def get_dead_letter(
    client: redis.asyncio.Redis,
    dead_letter_id: str,
    *,
    dead_letter_stream: str = DEAD_LETTER_STREAM,
) -> DeadLetter | None:
    if not is_stream_id(dead_letter_id):
        return None  # no entry has such an id (and XRANGE would refuse it)
    entries: Any = await client.xrange(dead_letter_stream, min=dead_letter_id, max=dead_letter_id)
    if not entries:
        return None
    entry_id, raw = entries[0]
    return parse_dead_letter(entry_id, raw)


async def replay_dead_letter(
    client: redis.asyncio.Redis,
    dead_letter_id: str,
    *,
    dead_letter_stream: str = DEAD_LETTER_STREAM,
) -> str:
    """Add the dead letter's fields back to its stream, then delete it; the new
    entry's id. Raises DeadLetterNotFound or DeadLetterUnreplayable."""
    letter = await get_dead_letter(client, dead_letter_id, dead_letter_stream=dead_letter_stream)
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    if not letter.stream:
        raise DeadLetterUnreplayable(dead_letter_id, "no stream")
    if not letter.fields:
        raise DeadLetterUnreplayable(dead_letter_id, "no fields")
    fields: dict[Any, Any] = dict(letter.fields)
    new_id = await client.xadd(letter.stream, fields)
    await client.xdel(dead_letter_stream, dead_letter_id)
    return decode_text(new_id)[0]


async def drop_dead_letter(
    client: redis.asyncio.Redis,
    dead_letter_id: str,
    *,
    dead_letter_stream: str = DEAD_LETTER_STREAM,
) -> bool:
    """Delete a dead letter; False if there was none with that id."""
    if not is_stream_id(dead_letter_id):
        return False  # no entry has such an id (and XDEL would refuse it)
    deleted: int = await client.xdel(dead_letter_stream, dead_letter_id)
    return deleted > 0
