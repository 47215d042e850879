"""A stream entry as handlers see it, and the decoding of raw (bytes) entries.

Consumers read with a client that does not decode responses: one entry whose
field names or values are not UTF-8 would otherwise fail inside the client's
parser, and a read that always fails pins the stream. Bytes are decoded here,
undecodable ones replaced, and the entry flagged so the handler can treat it
as malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

RawFields = Mapping[bytes, bytes]


class StreamEntry(NamedTuple):
    """One entry of `stream`. `deliveries` counts how many times it was handed
    out (1 on the first read); `undecodable` says some field name or value was
    not valid UTF-8 and holds U+FFFD replacement characters instead.

    Immutable, and a tuple rather than a frozen dataclass: one is made for every
    entry read, and a frozen dataclass costs several times as much to build."""

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
    entry_id_text, _ = decode_text(entry_id)  # Redis ids are ASCII digits
    try:
        # Nearly every entry: bytes that are UTF-8, decoded in one pass.
        text_fields = {name.decode(): value.decode() for name, value in fields.items()}
        return StreamEntry(stream, entry_id_text, text_fields, deliveries)
    except (UnicodeDecodeError, AttributeError):  # not UTF-8, or already text
        pass
    text_fields = {}
    undecodable = False
    for raw_name, raw_value in fields.items():
        name, bad_name = decode_text(raw_name)
        value, bad_value = decode_text(raw_value)
        undecodable = undecodable or bad_name or bad_value
        text_fields[name] = value
    return StreamEntry(stream, entry_id_text, text_fields, deliveries, undecodable)


def decode_entries(stream: str, raw: Sequence[tuple[bytes, RawFields]]) -> list[StreamEntry]:
    """`decode_entry` for a whole reply of first deliveries: one pass while every
    id, name and value is UTF-8 bytes (nearly always), entry by entry else."""
    decode = bytes.decode  # called from C by map(): no Python frame per name or value
    try:
        return [
            StreamEntry(
                stream,
                decode(entry_id),
                dict(zip(map(decode, fields), map(decode, fields.values()), strict=True)),
            )
            for entry_id, fields in raw
        ]
    except (UnicodeDecodeError, TypeError):  # not UTF-8, or already text
        return [decode_entry(stream, entry_id, fields) for entry_id, fields in raw]
