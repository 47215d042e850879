"""A stream entry as handlers see it, and the decoding of raw (bytes) entries.

Consumers read with a client that does not decode responses: one entry whose
field names or values are not UTF-8 would otherwise fail inside the client's
parser, and a read that always fails pins the stream. Bytes are decoded here,
undecodable ones replaced, and the entry flagged so the handler can treat it
as malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RawFields = Mapping[bytes, bytes]


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of `stream`. `deliveries` counts how many times it was handed
    out (1 on the first read); `undecodable` says some field name or value was
    not valid UTF-8 and holds U+FFFD replacement characters instead."""

    stream: str
    entry_id: str
    fields: dict[str, str]
    deliveries: int = 1
    undecodable: bool = False


def decode_text(raw: bytes | str) -> tuple[str, bool]:
    """`raw` as text, and whether it had to be repaired."""
    if isinstance(raw, str):
        return raw, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def decode_entry(
    stream: str, entry_id: bytes | str, fields: RawFields, *, deliveries: int = 1
) -> StreamEntry:
    """A StreamEntry from what redis-py returns for one entry of XREAD & co."""
    text_fields: dict[str, str] = {}
    undecodable = False
    for raw_name, raw_value in fields.items():
        name, bad_name = decode_text(raw_name)
        value, bad_value = decode_text(raw_value)
        undecodable = undecodable or bad_name or bad_value
        text_fields[name] = value
    entry_id_text, _ = decode_text(entry_id)  # Redis ids are ASCII digits
    return StreamEntry(stream, entry_id_text, text_fields, deliveries, undecodable)
