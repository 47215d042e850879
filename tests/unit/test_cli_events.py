"""`runplane events tail`'s SSE parsing and its one-line rendering."""

from __future__ import annotations

import http.server
import json
import re
import threading

from typer.testing import CliRunner

from runplane.cli.events import SseMessage, describe, header, parse_sse
from runplane.cli.main import app
from runplane.cli.output import Format
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


def test_describe_renders_time_type_runtime_change_outcome_and_actor() -> None:
    line = describe(envelope(7, type="runtime.stop", status_from="running", status_to="stopped"))
    assert re.split(r"\s{2,}", line.plain) == [
        "2025-01-02T03:04:05.678Z",
        "runtime.stop",
        "rt-1",
        "running -> stopped",
        "success",
        "runplane",
    ]


def test_event_lines_line_up_under_the_header() -> None:
    """tail prints one line at a time: fixed widths keep each value under its header."""
    lines = [
        header(),
        describe(envelope(1, type="runtime.start", runtime_id="a")).plain,
        describe(envelope(2, type="runtime.snapshot.create", runtime_id="web-frontend-7")).plain,
    ]
    for name in ("TYPE", "SUBJECT", "CHANGE", "OUTCOME", "ACTOR"):
        column = lines[0].index(name)
        assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])


def test_wide_event_lines_add_team_host_and_reason() -> None:
    assert header(Format.WIDE).split() == [
        "TIME", "TYPE", "SUBJECT", "TEAM", "HOST", "CHANGE", "OUTCOME", "ACTOR", "REASON",
    ]  # fmt: skip
    assert "team-a" in describe(envelope(1), Format.WIDE).plain.split()


def test_tail_resumes_after_a_lagging_cut_from_the_last_event_shown() -> None:
    """The server cuts a follower that fell behind with `runplane.lagging`; tail
    reconnects with Last-Event-ID at once and misses nothing."""
    asked: list[str | None] = []
    first = envelope(1, type="runtime.start")
    second = envelope(2, type="runtime.stop")
    answers = [
        f"id: 1-0\nevent: runtime.start\ndata: {json.dumps(first)}\n\n"
        'id: 1-0\nevent: runplane.lagging\ndata: {"last_event_id": "1-0"}\n\n',
        f"id: 2-0\nevent: runtime.stop\ndata: {json.dumps(second)}\n\n",
    ]

    class Sse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.headers.get("Last-Event-ID"))
            body = answers[len(asked) - 1].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = CliRunner().invoke(
            app,
            ["events", "tail", "--url", url, "--api-key", "k", "--json"],
            catch_exceptions=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert asked == [None, "1-0"]
    shown = [json.loads(line)["type"] for line in done.stdout.splitlines() if line.startswith("{")]
    assert shown == ["runtime.start", "runtime.stop"]
    assert done.exit_code == 1  # the server closed the resumed stream: tail says how to resume
