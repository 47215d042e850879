"""Webhook test helpers: a sender and a resolver that hold state, record
builders, a wired-up set of webhook services on fakes, and a real HTTP
receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.domain.webhooks.model import (
    Delivery,
    DeliveryStatus,
    SendRequest,
    SendResult,
    Webhook,
)
from runplane.domain.webhooks.rules import RetrySchedule
from runplane.ports.webhooks import WebhookStore
from runplane.services.webhooks.delivery import Deliverer
from runplane.services.webhooks.management import WebhookService
from runplane.testing.webhooks import InMemoryWebhookStore
from tests.support.clock import FakeClock
from tests.support.tokens import SequentialTokens


class FakeSender:
    """Answers each send with the next of `results` (the last one repeats)."""

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results) or [SendResult(latency_ms=5, status_code=200)]
        self.requests: list[SendRequest] = []

    def answer(self, *results: SendResult) -> None:
        self.results = list(results)

    async def send(self, request: SendRequest) -> SendResult:
        self.requests.append(request)
        if len(self.results) > 1:
            return self.results.pop(0)
        return self.results[0]


def status(code: int) -> SendResult:
    return SendResult(latency_ms=7, status_code=code, error=None if code < 300 else f"HTTP {code}")


@dataclass
class FakeResolver:
    """A DNS of its own: host -> addresses; unknown hosts do not resolve."""

    records: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.records:
            raise OSError(f"{host}: name does not resolve")
        return list(self.records[host])


PUBLIC_HOSTS = {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}


@dataclass
class WebhookWorld:
    clock: FakeClock
    store: InMemoryWebhookStore
    sender: FakeSender
    resolver: FakeResolver
    deliverer: Deliverer
    service: WebhookService
    disabled: list[tuple[str, str]]

    @classmethod
    def build(
        cls,
        *,
        schedule: tuple[float, ...] = (5, 300, 1800),
        failure_window_s: float = 3600,
        allow_private: bool = False,
        store: WebhookStore | None = None,
    ) -> WebhookWorld:
        clock = FakeClock()
        memory = InMemoryWebhookStore()
        sender = FakeSender()
        resolver = FakeResolver(dict(PUBLIC_HOSTS))
        disabled: list[tuple[str, str]] = []

        async def on_disabled(webhook: Webhook, reason: str) -> None:
            disabled.append((webhook.id, reason))

        deliverer = Deliverer(
            store or memory,
            sender,
            clock,
            schedule=RetrySchedule(schedule, jitter=0.0),
            failure_window_s=failure_window_s,
            on_disabled=on_disabled,
        )
        service = WebhookService(
            store or memory,
            deliverer,
            clock,
            SequentialTokens(),
            resolver=resolver,
            allow_private=allow_private,
        )
        return cls(clock, memory, sender, resolver, deliverer, service, disabled)


def make_webhook(webhook_id: str = "wh-1", at: datetime | None = None, **changes: Any) -> Webhook:
    moment = at or FakeClock().now()
    values: dict[str, Any] = {
        "id": webhook_id,
        "team_id": "team-a",
        "url": "https://hooks.example.com/in",
        "event_types": (),
        "enabled": True,
        "created_at": moment,
        "updated_at": moment,
    }
    values.update(changes)
    return Webhook(**values)


def make_delivery(
    delivery_id: str = "dlv-1",
    webhook_id: str = "wh-1",
    at: datetime | None = None,
    **changes: Any,
) -> Delivery:
    moment = at or FakeClock().now()
    values: dict[str, Any] = {
        "id": delivery_id,
        "webhook_id": webhook_id,
        "event_id": f"evt-{delivery_id}",
        "event_type": "runtime.start",
        "runtime_id": "rt-1",
        "payload": json.dumps({"id": f"evt-{delivery_id}"}),
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": moment,
        "created_at": moment,
        "updated_at": moment,
    }
    values.update(changes)
    return Delivery(**values)


def make_event(
    event_id: str = "evt-1",
    *,
    team_id: str = "team-a",
    type_: str = "runtime.start",
    at: datetime | None = None,
) -> LifecycleEvent:
    return LifecycleEvent(
        id=event_id,
        type=type_,
        runtime_id="rt-1",
        time=at or FakeClock().now(),
        sequence=2,
        outcome="success",
        team_id=team_id,
        actor=Actor("system", "test"),
        status_from="starting",
        status_to="running",
    )


@dataclass
class Received:
    """One request: header names in lower case; `answered` is the status sent back."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int = 0


Behaviour = Callable[[Received], tuple[int, dict[str, str], bytes]]


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request. `behaviour`
    decides each answer (status, headers, body); by default 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour: Behaviour = lambda _: (200, {}, b"ok")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, *codes: int) -> None:
        """Answer with these codes in turn, then 200."""
        pending = list(codes)
        self.behaviour = lambda _: (pending.pop(0) if pending else 200, {}, b"")

    def posts(self, path: str = "/hook") -> list[Received]:
        return [r for r in self.received if r.path == path]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                headers_in = {name.lower(): value for name, value in self.headers.items()}
                got = Received(self.path, headers_in, self.rfile.read(length), time.monotonic())
                receiver.received.append(got)
                code, headers, body = receiver.behaviour(got)
                got.answered = code
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
