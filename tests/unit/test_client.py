"""runplane.client's logic on httpx's MockTransport: errors by code, the
Idempotency-Key, retries, the event stream's frames, wait_for's last fallback,
and webhook verification."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook as Signer

from runplane.client import (
    ERRORS_BY_CODE,
    Client,
    ConnectionFailed,
    EventsResync,
    Forbidden,
    InvalidState,
    QuotaExceeded,
    RateLimited,
    RunplaneError,
    ServiceUnavailable,
    WebhookVerificationFailed,
    verify_webhook,
)
from runplane.client.errors import error_from

Handler = Callable[[httpx.Request], httpx.Response]
NOW = "2026-01-01T00:00:00Z"
RECORD = {
    "runtime_id": "rt-1",
    "team_id": "t",
    "status": "running",
    "version": 2,
    "driver": "process",
    "spec": {},
    "created_at": NOW,
    "updated_at": NOW,
    "labels": {"new": "server field"},
}
RESULT = {"outcome": "success", "error_code": None, "error_message": "", "runtime": RECORD}


def client(handler: Handler, **options: float) -> Client:
    return Client("http://runplane.test", "k", transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]


def error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} says so", "operation_id": "op-1"}}
    return httpx.Response(status, json=body, headers=headers)


def test_every_server_code_has_its_class() -> None:
    server_codes = {
        "invalid_request", "unauthorized", "forbidden", "quota_exceeded", "not_found",
        "method_not_allowed", "timeout", "conflict", "invalid_state", "payload_too_large",
        "rate_limited", "internal", "service_unavailable",
    }  # fmt: skip
    assert set(ERRORS_BY_CODE) == server_codes
    for code, cls in ERRORS_BY_CODE.items():
        raised = error_from(error(400, code))
        assert type(raised) is cls
        assert (raised.code, raised.message, raised.operation_id) == (
            code,
            f"{code} says so",
            "op-1",
        )


def test_a_code_falls_back_on_its_status() -> None:
    assert isinstance(error_from(error(409, "invalid_state")), InvalidState)
    assert isinstance(error_from(error(403, "quota_exceeded")), Forbidden)  # a kind of forbidden
    assert type(error_from(error(403, "quota_exceeded"))) is QuotaExceeded
    newer = error_from(error(409, "some_new_code"))
    assert (type(newer).__name__, newer.code) == ("Conflict", "some_new_code")
    proxy = error_from(httpx.Response(502, text="<html>bad gateway</html>"))
    assert (type(proxy), proxy.code, proxy.status) == (RunplaneError, "http_502", 502)
    assert "bad gateway" in proxy.message
    limited = error_from(error(429, "rate_limited", **{"Retry-After": "3"}))
    assert isinstance(limited, RateLimited)
    assert limited.retry_after_s == 3.0


def test_mutating_calls_carry_a_fresh_uuid4_key_or_the_given_one() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RECORD if request.method == "GET" else RESULT)

    with client(handler) as api:
        api.stop("rt-1")
        api.stop("rt-1")
        api.pause("rt-1", idempotency_key="mine")
        api.get_runtime("rt-1")
    keys = [r.headers.get("idempotency-key") for r in seen]
    assert uuid.UUID(keys[0]).version == 4
    assert keys[0] != keys[1]
    assert keys[2:] == ["mine", None]  # a read carries none


def test_a_503_is_retried_with_the_same_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) < 3:
            return error(503, "service_unavailable", **{"Retry-After": "0"})
        return httpx.Response(200, json=RESULT)

    with client(handler) as api:
        result = api.resume("rt-1")
    assert result.runtime is not None
    assert result.runtime.model_extra == {"labels": {"new": "server field"}}
    assert len(seen) == 3
    assert len({r.headers["idempotency-key"] for r in seen}) == 1


def test_retries_end_and_webhook_calls_are_sent_once() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return error(503, "service_unavailable", **{"Retry-After": "0"})

    with client(handler, retries=1) as api, pytest.raises(ServiceUnavailable):
        api.get_runtime("rt-1")
    assert calls["n"] == 2
    calls["n"] = 0
    with client(handler) as api, pytest.raises(ServiceUnavailable):
        api.create_webhook("https://hooks.example.com/")  # the server does not dedupe these
    assert calls["n"] == 1


def test_no_answer_is_a_connection_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(handler, retries=0) as api, pytest.raises(ConnectionFailed) as failed:
        api.list_runtimes()
    assert (failed.value.code, failed.value.status) == ("connection_failed", None)


def sse(*frames: str) -> httpx.Response:
    body = "".join(frames).encode()
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def frame(entry_id: str, event_type: str, data: dict[str, object]) -> str:
    return f"id: {entry_id}\nevent: {event_type}\ndata: {json.dumps(data)}\n\n"


def envelope(event_id: str) -> dict[str, object]:
    return {"id": event_id, "type": "runtime.stop", "subject": "rt-1", "time": NOW, "data": {}}


def test_events_resume_after_a_lagging_cut_and_a_dropped_connection() -> None:
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        assert request.url.params.get("types") == "runtime.stop"
        if len(asked) == 1:  # one event, then the server cuts the lagging client
            lagging = {"last_event_id": "1-0", "reason": "behind"}
            return sse(
                frame("1-0", "runtime.stop", envelope("e1")),
                frame("1-0", "runplane.lagging", lagging),
            )
        if len(asked) == 2:
            raise httpx.ReadError("reset", request=request)
        return sse(frame("2-0", "runtime.stop", envelope("e2")))

    with client(handler) as api:
        stream = api.events(types=["runtime.stop"], last_event_id="0-1")
        first, second = next(stream), next(stream)
        stream.close()
    assert [(first.id, first.stream_id), (second.id, second.stream_id)] == [
        ("e1", "1-0"),
        ("e2", "2-0"),
    ]
    assert asked == ["0-1", "1-0", "1-0"]


def test_a_resync_frame_is_raised_not_skipped() -> None:
    resync = {"last_event_id": "1-0", "resume_id": "9-0", "reason": "trimmed"}

    def handler(request: httpx.Request) -> httpx.Response:
        return sse(frame("9-0", "resync", resync))

    with client(handler) as api, pytest.raises(EventsResync) as lost:
        next(api.events(last_event_id="1-0"))
    assert (lost.value.last_event_id, lost.value.resume_id) == ("1-0", "9-0")


def test_events_give_up_after_reconnect_for() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(handler) as api, pytest.raises(ConnectionFailed):
        next(api.events(reconnect_for=0.5))


def test_wait_for_reads_the_record_when_waits_are_refused_too() -> None:
    reads = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/stream", "/wait")):
            return error(429, "rate_limited")
        reads["n"] += 1
        return httpx.Response(
            200, json={**RECORD, "status": "stopped" if reads["n"] > 2 else "running"}
        )

    with client(handler) as api:
        async_twin = api._async_twin()
        async_twin._http._transport = httpx.MockTransport(handler)
        api._async_twin = lambda: async_twin  # type: ignore[method-assign]
        assert api.wait_for("rt-1", "stopped", timeout=30).status == "stopped"
    assert reads["n"] == 3


def signed(secret: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    moment = at or datetime.now(UTC)
    signature = Signer(secret).sign("msg-1", moment, body.decode())
    return {
        "Webhook-Id": "msg-1",
        "Webhook-Timestamp": str(int(moment.timestamp())),
        "Webhook-Signature": signature,
    }


SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_verify_webhook_returns_the_event_or_refuses_it() -> None:
    body = json.dumps(envelope("e1")).encode()
    event = verify_webhook(SECRET, signed(SECRET, body), body)
    assert (event.id, event.type, event.stream_id) == ("e1", "runtime.stop", None)
    assert verify_webhook(SECRET, list(signed(SECRET, body).items()), body.decode()).id == "e1"

    cases = {
        "tampered": (signed(SECRET, body), body.replace(b"rt-1", b"rt-2")),
        "stale": (signed(SECRET, body, datetime.fromtimestamp(time.time() - 3600, UTC)), body),
        "unsigned": ({"webhook-id": "msg-1"}, body),
        "garbled": ({**signed(SECRET, body), "Webhook-Signature": "nonsense"}, body),
        "not an event": (signed(SECRET, b'{"x": 1}'), b'{"x": 1}'),
    }
    for name, (headers, payload) in cases.items():
        with pytest.raises(WebhookVerificationFailed) as refused:
            verify_webhook(SECRET, headers, payload)
        assert refused.value.code == "invalid_signature", name
    with pytest.raises(WebhookVerificationFailed):
        verify_webhook("whsec_", signed(SECRET, body), body)
