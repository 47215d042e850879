"""Dead letters: stream entries that failed past their delivery cap, and their
format on `runtime:dead_letters` (DESIGN §4): `stream`, `entry_id`, `fields`
(JSON object of the original fields), `error`, `deliveries`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runplane.domain.documents import InvalidDocument, loads
from runplane.domain.errors import RunplaneError

_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
MAX_ID_PART = 2**64 - 1
"""Both halves of a Redis stream id are unsigned 64-bit integers."""
ID_RULE = "a dead letter id is a stream entry id, <ms>-<seq> (digits)"


def is_entry_id(value: str) -> bool:
    """`<ms>-<seq>`, each half within 64 bits: an id Redis accepts as such
    (anything else makes XRANGE or XDEL answer an error, not "none")."""
    found = _ENTRY_ID.fullmatch(value)
    return found is not None and all(int(part) <= MAX_ID_PART for part in found.groups())


def is_last_possible_id(value: str) -> bool:
    """Nothing can follow this id (an exclusive range after it is an error)."""
    return value == f"{MAX_ID_PART}-{MAX_ID_PART}"


class DeadLetterNotFound(RunplaneError):
    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter {dead_letter_id!r}")
        self.dead_letter_id = dead_letter_id


LIFECYCLE_EVENTS_STREAM = "runplane:events"


def replay_refusal(stream: str) -> str | None:
    """Why a dead letter of `stream` is not added back, or None. A lifecycle
    event (a hook's or the webhooks' dead letter) would be delivered again to
    every consumer group of the events stream, not only the one that failed."""
    if stream == LIFECYCLE_EVENTS_STREAM:
        return "a lifecycle event goes to every consumer group; not replayed"
    return None


class DeadLetterUnreplayable(RunplaneError):
    """The dead letter lacks a stream or fields to add back."""

    def __init__(self, dead_letter_id: str, why: str) -> None:
        super().__init__(f"dead letter {dead_letter_id!r} cannot be replayed: {why}")
        self.dead_letter_id = dead_letter_id


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    """The dead letter's own entry id in the dead-letter stream."""
    stream: str
    entry_id: str
    fields: dict[str, str]
    error: str
    deliveries: int


MAX_ERROR_CHARS = 2_000
"""An error message is cut to this length: a dead letter is for a person to
read, and a runaway message must not bloat the stream."""


def dead_letter_fields(
    stream: str, entry_id: str, fields: Mapping[str, str], error: str, deliveries: int
) -> dict[str, str]:
    """The fields of the dead letter of entry `entry_id` of `stream`."""
    return {
        "stream": stream,
        "entry_id": entry_id,
        "fields": json.dumps(dict(fields), ensure_ascii=False),
        "error": error[:MAX_ERROR_CHARS],
        "deliveries": str(deliveries),
    }


def parse_dead_letter(dead_letter_id: bytes | str, raw: Mapping[Any, Any]) -> DeadLetter:
    """A DeadLetter from a raw entry (bytes or text); missing or malformed parts
    come out empty, so one broken dead letter never fails a listing."""
    values = {_text(k): _text(v) for k, v in raw.items()}
    try:
        loaded = loads(values.get("fields", "{}"))  # bounded depth, valid Unicode
    except InvalidDocument:
        loaded = {}
    fields = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    deliveries = values.get("deliveries", "0")
    return DeadLetter(
        id=_text(dead_letter_id),
        stream=values.get("stream", ""),
        entry_id=values.get("entry_id", ""),
        fields=fields,
        error=values.get("error", ""),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
