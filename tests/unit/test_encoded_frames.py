"""The SSE route's frame cache: each event encoded once however many clients
write it, and bounded."""

from __future__ import annotations

import pytest

from runplane.api.routes import events
from runplane.api.routes.events import EncodedFrames, frame
from runplane.domain.event_reading import StoredEvent
from tests.support.events import envelope


def stored(n: int) -> StoredEvent:
    return StoredEvent(f"{n}-0", envelope(n))


def test_a_batch_is_its_frames_in_order_each_encoded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[str] = []

    def counted(event: StoredEvent) -> object:
        encoded.append(event.entry_id)
        return frame(event)

    monkeypatch.setattr(events, "frame", counted)
    cache = EncodedFrames(16)
    batch = [stored(n) for n in range(1, 4)]

    first = [cache.batch(batch) for _ in range(100)]  # a hundred clients

    assert first == [b"".join(frame(e).encode() for e in batch)] * 100
    assert b"id: 1-0\r\nevent: runtime.start\r\ndata: {" in first[0]
    assert encoded == ["1-0", "2-0", "3-0"]


def test_the_cache_is_bounded_and_encodes_an_evicted_event_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[str] = []

    def counted(event: StoredEvent) -> object:
        encoded.append(event.entry_id)
        return frame(event)

    monkeypatch.setattr(events, "frame", counted)
    cache = EncodedFrames(2)
    one, two, three = stored(1), stored(2), stored(3)

    cache.batch([one, two])
    cache.batch([three])  # evicts one
    again = cache.batch([one, three])

    assert again == frame(one).encode() + frame(three).encode()
    assert encoded == ["1-0", "2-0", "3-0", "1-0"]
    assert len(cache._frames) == len(cache._held) <= 2
