"""Decoding raw entries: UTF-8 as text, anything else repaired and flagged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplane.streams.entries import decode_entries, decode_entry
from runplane.streams.handler import by_runtime_id
from runplane.streams.settings import ConsumerSettings


def test_utf8_fields_decode_as_they_are() -> None:
    entry = decode_entry("s", b"1-0", {b"runtime_id": "rt-é".encode()}, deliveries=2)
    assert entry.fields == {"runtime_id": "rt-é"}
    assert entry.entry_id == "1-0"
    assert entry.deliveries == 2
    assert not entry.undecodable


def test_undecodable_bytes_are_replaced_and_flagged() -> None:
    entry = decode_entry("s", b"1-0", {b"ok": b"\xff", b"\xfe": b"v"})
    assert entry.fields == {"ok": "\ufffd", "\ufffd": "v"}
    assert entry.undecodable


@given(st.dictionaries(st.binary(max_size=8), st.binary(max_size=8), max_size=5))
def test_any_bytes_decode_without_raising(fields: dict[bytes, bytes]) -> None:
    entry = decode_entry("s", b"1-0", fields)
    assert len(entry.fields) <= len(fields)
    assert isinstance(by_runtime_id(entry), str)


def test_the_default_key_is_the_runtime_id_or_else_the_entry_id() -> None:
    assert by_runtime_id(decode_entry("s", b"1-0", {b"runtime_id": b"rt-1"})) == "rt-1"
    assert by_runtime_id(decode_entry("s", b"1-0", {b"runtime_id": b""})) == "1-0"
    assert by_runtime_id(decode_entry("s", b"2-0", {b"x": b"y"})) == "2-0"


@pytest.mark.parametrize(
    "changes",
    [{"batch_size": 0}, {"block_ms": 0}, {"max_deliveries": 0}, {"backoff_cap_s": 0.01}],
)
def test_settings_refuse_nonsense(changes: dict[str, int | float]) -> None:
    with pytest.raises(ValueError, match="must"):
        ConsumerSettings(dead_letter_stream="dead", **changes)  # type: ignore[arg-type]


@given(
    st.lists(
        st.dictionaries(st.binary(max_size=6), st.binary(max_size=6), min_size=1, max_size=4),
        max_size=5,
    )
)
def test_a_whole_reply_decodes_as_each_entry_would(batch: list[dict[bytes, bytes]]) -> None:
    raw = [(f"{i}-0".encode(), fields) for i, fields in enumerate(batch)]
    assert decode_entries("s", raw) == [decode_entry("s", i, f) for i, f in raw]
