"""One hostile entry never breaks a reader, over `runplane serve` on a real
redis-server: garbage XADDed straight into the health and lifecycle event
streams is passed over (the health route, `GET /v1/events` and a resuming SSE
client go on with the good entries), and malformed dead-letter ids are 400s."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import redis

from runplane.cli.events import SseMessage, parse_sse
from tests.support.e2e_backend import raw_redis
from tests.support.events import envelope
from tests.support.serve import RunplaneServer

DEEP = "[" * 10_000 + "]" * 10_000
GARBAGE_EVENTS: list[dict[bytes, bytes]] = [
    {b"event": b"{not json"},
    {b"event": b"\xff\xfe not UTF-8"},
    {b"event": b'{"type": "runtime.start", "data": ' + DEEP.encode() + b"}"},
    {b"event": b'{"type": "runtime.start", "subject": "\\ud800"}'},
    {b"event": b'{"no": "type"}'},
    {b"colour": b"green"},
]


def raw(url: str) -> redis.Redis:
    return raw_redis(url)  # bytes in, bytes out: garbage stays garbage


def health_garbage(runtime_id: str) -> list[dict[bytes, bytes]]:
    rid = runtime_id.encode()
    now = str(int(time.time() * 1000)).encode()
    base = {b"runtime_id": rid, b"container_id": b"", b"event_type": b"probe_failed"}
    return [
        base | {b"occurred_at_ms": now, b"details": b'{"a": "\xff\xfe"}'},
        base | {b"occurred_at_ms": now, b"details": b'{"a": ' + DEEP.encode() + b"}"},
        base | {b"occurred_at_ms": now, b"details": b'{"a": "\\ud800"}'},
        base | {b"occurred_at_ms": b"9" * 30, b"details": b"{}"},
        base | {b"occurred_at_ms": now, b"details": b"[1]", b"\xff": b"\xff"},
        {b"runtime_id": rid, b"event_type": b"no_such_type"},
    ]


def create(server: RunplaneServer, runtime_id: str) -> None:
    with server.client() as http:
        spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
        made = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": spec})
        assert made.status_code == 201, made.text


def test_the_health_route_passes_over_undecodable_health_events(
    serve: RunplaneServer, redis_url: str
) -> None:
    create(serve, "hx-1")
    client = raw(redis_url)
    for fields in health_garbage("hx-1"):
        client.xadd("runtime:health_events", fields)  # type: ignore[arg-type]
    good = {
        "runtime_id": "hx-1",
        "container_id": "",
        "event_type": "probe_failed",
        "occurred_at_ms": "1700000000123",
        "details": json.dumps({"probe": "good"}),
    }
    client.xadd("runtime:health_events", good)  # type: ignore[arg-type]
    with serve.client() as http:
        answer = http.get("/v1/runtimes/hx-1/health", params={"limit": 200})
        assert answer.status_code == 200, answer.text
        details = [event["details"] for event in answer.json()["events"]]
        assert {"probe": "good"} in details
        assert len(details) == len(answer.json()["events"])
        assert http.get("/readyz").status_code == 200  # the health consumer lives on


def test_events_page_and_a_resuming_sse_client_pass_over_garbage(
    serve: RunplaneServer, redis_url: str
) -> None:
    client = raw(redis_url)
    before = client.xadd("runplane:events", {b"event": json.dumps(envelope(1)).encode()})
    for fields in GARBAGE_EVENTS:
        client.xadd("runplane:events", fields)  # type: ignore[arg-type]
    after = client.xadd("runplane:events", {b"event": json.dumps(envelope(2)).encode()})
    wanted = [before.decode(), after.decode()]
    with serve.client() as http:
        page = http.get("/v1/events", params={"limit": 100})
        assert page.status_code == 200, page.text
        ids = [event["id"] for event in page.json()["events"]]
        assert [i for i in ids if i in wanted] == wanted
        assert len(ids) == len(set(ids))
        resumed = http.get("/v1/events", params={"after": before.decode(), "limit": 100})
        assert resumed.status_code == 200, resumed.text
        assert after.decode() in [event["id"] for event in resumed.json()["events"]]
    # A client resuming just before the garbage gets the event after it, then
    # the next live one: its stream was not closed by what lies between.
    with (
        serve.client() as http,
        http.stream(
            "GET", "/v1/events/stream", headers={"Last-Event-ID": before.decode()}
        ) as stream,
    ):
        assert stream.status_code == 200
        messages = _messages(stream)
        first = _next_event(messages)
        assert (first.id, json.loads(first.data)["id"]) == (after.decode(), "evt-2")
        client.xadd("runplane:events", {b"{": b"garbage"})
        live = client.xadd("runplane:events", {b"event": json.dumps(envelope(3)).encode()})
        second = _next_event(messages)
        assert second.id == live.decode()


def _messages(stream: httpx.Response) -> Iterator[SseMessage]:
    return parse_sse(stream.iter_lines())


def _next_event(messages: Iterator[SseMessage]) -> SseMessage:
    for message in messages:
        if message.id is not None:  # a frame with an entry id, not a keepalive
            return message
    raise AssertionError("the event stream ended")


MALFORMED_DEAD_LETTER_CALLS = [
    ("GET", "/v1/dead-letters", {"after": "abc"}),
    ("GET", "/v1/dead-letters", {"after": "1-2-3"}),
    ("GET", "/v1/dead-letters", {"after": "99999999999999999999-0"}),
    ("POST", "/v1/dead-letters/abc/replay", {}),
    ("POST", "/v1/dead-letters/1-99999999999999999999/replay", {}),
    ("DELETE", "/v1/dead-letters/1-x", {}),
    ("DELETE", "/v1/dead-letters/%2E%2E", {}),
]


def test_malformed_dead_letter_ids_are_400s(serve: RunplaneServer) -> None:
    """Every call against one serve (a serve per call cost seconds each); each
    case that answers otherwise is named."""
    wrong = []
    with serve.client() as http:
        for method, path, params in MALFORMED_DEAD_LETTER_CALLS:
            answer = http.request(method, path, params=params)
            error = answer.json().get("error") if answer.status_code == 400 else None
            if not (
                isinstance(error, dict)
                and error.get("code") == "invalid_request"
                and "<ms>-<seq>" in str(error.get("message"))
            ):
                wrong.append(f"{method} {path} {params}: {answer.status_code} {answer.text}")
    assert wrong == []


def test_the_dlq_cli_shows_the_400_cleanly(serve: RunplaneServer) -> None:
    for args in (("replay", "../x"), ("drop", "[/red]abc"), ("ls", "--after", "abc")):
        done = serve.cli("dlq", *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "invalid_request" in done.stderr
        assert "<ms>-<seq>" in done.stderr
        assert "Traceback" not in done.stderr
    listed = serve.cli("dlq", "ls", "--after", "1-0")
    assert listed.returncode == 0, listed.stderr


def test_a_hostile_start_job_gets_its_result_once_and_the_next_job_runs(
    serve: RunplaneServer, redis_url: str
) -> None:
    """The issue's cases on the real wiring (SQLite store): a lone surrogate
    used to be stored and retried 5 times as an infrastructure fault, a deep
    spec raised RecursionError and got no result at all."""
    client = raw(redis_url)
    hostile = {
        "surrogate": b'{"command": ["sleep", "60"], "env": {"A": "\\ud800"}}',
        "deep": b'{"command": ["sleep", "60"], "x": ' + DEEP.encode() + b"}",
    }
    for job_id, spec in hostile.items():
        client.xadd(
            "runtime:start_jobs",
            {b"runtime_id": b"hj-1", b"job_id": job_id.encode(), b"spec": spec},
        )
    good = json.dumps({"command": ["sleep", "600"], "stop_timeout_s": 5}).encode()
    client.xadd("runtime:start_jobs", {b"runtime_id": b"hj-2", b"job_id": b"good", b"spec": good})
    deadline = time.monotonic() + 120
    while True:
        results = [
            {k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in client.xrange("runtime:job_results")
        ]
        if {"surrogate", "deep", "good"} <= {r["job_id"] for r in results}:
            break
        assert time.monotonic() < deadline, results
        time.sleep(0.2)
    by_job = {r["job_id"]: r for r in results}
    assert len(by_job) == len(results) == 3
    assert by_job["surrogate"]["error_code"] == by_job["deep"]["error_code"] == "invalid_request"
    assert by_job["good"]["outcome"] == "success", by_job["good"]
    assert client.xlen("runtime:dead_letters") == 0
    with serve.client() as http:
        assert http.get("/v1/runtimes/hj-1").status_code == 404  # nothing was stored
        assert http.get("/v1/runtimes/hj-2").json()["status"] == "running"
