"""`runplane events tail`'s SSE parsing and its one-line rendering."""

from __future__ import annotations

from runplane.cli.events import SseMessage, describe, parse_sse
from tests.support.events import envelope


def test_parse_sse_follows_the_event_stream_rules() -> None:
    text = (
        ": ping - 2025-01-01\r\n"
        "\r\n"
        'id: 1-0\r\nevent: runtime.start\r\ndata: {"a": 1}\r\n\r\n'
        "data:first\r\ndata: second\r\n\r\n"
        "id: 2-0\r\n\r\n"  # no data: not dispatched
        "event: resync\r\ndata: {}\r\n\r\n"
    )
    assert list(parse_sse(text.splitlines())) == [
        SseMessage("runtime.start", '{"a": 1}', "1-0"),
        SseMessage("message", "first\nsecond", None),
        SseMessage("resync", "{}", None),
    ]


def test_describe_renders_time_type_runtime_change_and_outcome() -> None:
    line = describe(envelope(7, type="runtime.stop", status_from="running", status_to="stopped"))
    assert line.split() == [
        "2025-01-02T03:04:05.678Z",
        "runtime.stop",
        "rt-1",
        "running->stopped",
        "success",
    ]
