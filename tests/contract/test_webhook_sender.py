"""WebhookSender contract: HttpWebhookSender against a real HTTP receiver on
loopback, and the unit tests' FakeSender answering with `status(code)`, map an
answer to a SendResult alike: 2xx ok, 410 gone, any other status a failure that
carries it, one request per send.

Past the status mapping the fake is a script (it answers what a test tells it),
so what needs a network — signatures, timeouts, refused connections, redirects,
private targets — is checked on the real sender alone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from runplane.adapters.http.webhook_sender import USER_AGENT, HttpWebhookSender
from runplane.adapters.system import SystemClock
from runplane.domain.webhooks.model import SendRequest
from runplane.ports.webhooks import WebhookSender
from tests.support.redis import free_port
from tests.support.webhooks import FakeSender, Received, Receiver, status

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
BODY = '{"id":"evt-1","type":"runtime.start","data":{"note":"héllo ✓"}}'


@dataclass(frozen=True, slots=True)
class SenderBackend:
    sender: WebhookSender
    url: str
    """Where the receiver listens."""
    answer: Callable[[int], None]
    """The receiver answers the next send with this status."""
    received: Callable[[], list[tuple[str, str]]]
    """(message id, body) of every request the receiver got, in order."""

    def request(self, message_id: str = "evt-1", body: str = BODY) -> SendRequest:
        return SendRequest(url=f"{self.url}/hook", secret=SECRET, message_id=message_id, body=body)


class WebhookSenderContract:
    """Every WebhookSender passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> SenderBackend:
        raise NotImplementedError

    @pytest.mark.parametrize("code", [200, 201, 204])
    async def test_a_2xx_answer_is_ok(self, backend: SenderBackend, code: int) -> None:
        backend.answer(code)

        result = await backend.sender.send(backend.request())

        assert (result.ok, result.gone, result.status_code, result.error) == (
            True,
            False,
            code,
            None,
        )
        assert result.latency_ms >= 0

    @pytest.mark.parametrize("code", [302, 400, 404, 429, 500, 503])
    async def test_any_other_answer_is_a_failure_carrying_its_status(
        self, backend: SenderBackend, code: int
    ) -> None:
        backend.answer(code)

        result = await backend.sender.send(backend.request())

        assert (result.ok, result.gone, result.status_code) == (False, False, code)
        assert result.error is not None
        assert result.error.startswith(f"HTTP {code}")

    async def test_410_says_the_endpoint_is_gone(self, backend: SenderBackend) -> None:
        backend.answer(410)

        result = await backend.sender.send(backend.request())

        assert (result.ok, result.gone, result.status_code) == (False, True, 410)

    async def test_each_send_is_one_request_with_its_id_and_body(
        self, backend: SenderBackend
    ) -> None:
        backend.answer(500)
        await backend.sender.send(backend.request("evt-1"))
        backend.answer(200)
        await backend.sender.send(backend.request("evt-2", body='{"id":"evt-2"}'))

        assert backend.received() == [("evt-1", BODY), ("evt-2", '{"id":"evt-2"}')]


class TestFakeSender(WebhookSenderContract):
    @pytest.fixture
    def backend(self) -> SenderBackend:
        sender = FakeSender()

        def answer(code: int) -> None:
            sender.answer(status(code))

        def received() -> list[tuple[str, str]]:
            return [(r.message_id, r.body) for r in sender.requests]

        return SenderBackend(sender, "https://hooks.example.com", answer, received)


class TestHttpWebhookSender(WebhookSenderContract):
    @pytest.fixture
    def receiver(self) -> Iterator[Receiver]:
        with Receiver().running() as server:
            yield server

    @pytest.fixture
    async def sender(self) -> AsyncIterator[HttpWebhookSender]:
        sender = HttpWebhookSender(SystemClock(), allow_private=True, timeout_s=0.5)
        yield sender
        await sender.aclose()

    @pytest.fixture
    def backend(self, receiver: Receiver, sender: HttpWebhookSender) -> SenderBackend:
        def received() -> list[tuple[str, str]]:
            return [(r.headers["webhook-id"], r.body.decode()) for r in receiver.received]

        return SenderBackend(sender, receiver.url, receiver.answer, received)

    async def test_the_post_is_signed_as_standard_webhooks_verify_it(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        before = int(datetime.now(UTC).timestamp())

        await backend.sender.send(backend.request())

        [post] = receiver.received
        assert StandardWebhook(SECRET).verify(post.body, post.headers) == {
            "id": "evt-1",
            "type": "runtime.start",
            "data": {"note": "héllo ✓"},
        }
        assert post.body == BODY.encode()
        assert before <= int(post.headers["webhook-timestamp"]) <= before + 5
        assert (post.path, post.headers["content-type"]) == ("/hook", "application/json")
        assert post.headers["user-agent"] == USER_AGENT

    async def test_a_signature_with_another_secret_does_not_verify(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        await backend.sender.send(backend.request())

        [post] = receiver.received
        with pytest.raises(WebhookVerificationError):
            StandardWebhook("whsec_" + "B" * 32).verify(post.body, post.headers)

    async def test_a_redirect_is_not_followed(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        receiver.behaviour = lambda got: (307, {"location": f"{receiver.url}/elsewhere"}, b"")

        result = await backend.sender.send(backend.request())

        assert (result.ok, result.status_code) == (False, 307)
        assert "not followed" in (result.error or "")
        assert [r.path for r in receiver.received] == ["/hook"]

    async def test_a_failures_answer_is_quoted_in_short(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        receiver.behaviour = lambda got: (500, {}, b"overloaded " + b"x" * 100_000)

        result = await backend.sender.send(backend.request())

        assert result.status_code == 500
        assert (result.error or "").startswith("HTTP 500: overloaded x")
        assert len(result.error or "") < 300

    async def test_no_answer_within_the_timeout_is_an_error_without_status(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        def slow(got: Received) -> tuple[int, dict[str, str], bytes]:
            time.sleep(5)
            return 200, {}, b""

        receiver.behaviour = slow
        started = time.monotonic()

        result = await backend.sender.send(backend.request())

        assert time.monotonic() - started < 4  # gave up at its timeout, not after 5 s
        assert (result.ok, result.status_code, result.error) == (
            False,
            None,
            "timed out after 0.5 s",
        )
        assert 450 <= result.latency_ms < 1200

    async def test_a_refused_connection_is_an_error_without_status(
        self, backend: SenderBackend
    ) -> None:
        request = SendRequest(
            url=f"http://127.0.0.1:{free_port()}/hook", secret=SECRET, message_id="e", body="{}"
        )

        result = await backend.sender.send(request)

        assert (result.ok, result.gone, result.status_code) == (False, False, None)
        assert result.error

    async def test_a_private_target_is_refused_unless_allowed(
        self, backend: SenderBackend, receiver: Receiver
    ) -> None:
        strict = HttpWebhookSender(SystemClock(), timeout_s=0.5)
        try:
            result = await strict.send(backend.request())
        finally:
            await strict.aclose()

        assert (result.ok, result.status_code) == (False, None)
        assert (result.error or "").startswith("refused:")
        assert receiver.received == []
