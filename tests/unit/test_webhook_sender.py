"""HttpWebhookSender without a network (httpx.MockTransport): Standard Webhooks
headers, the connect-time address check, and pinning to the checked address."""

from __future__ import annotations

import httpx
import pytest
from standardwebhooks import Webhook as StandardWebhook

from runplane.adapters.http.webhook_sender import HttpWebhookSender, signed_headers
from runplane.adapters.system import SystemClock
from runplane.domain.webhooks.model import SendRequest
from tests.support.webhooks import FakeResolver

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
BODY = '{"id":"evt-1","type":"runtime.start"}'


class Recording:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = b"nope" if self.status >= 300 else b""
        return httpx.Response(self.status, stream=httpx.ByteStream(body))  # unread, as on a wire


def sender_for(
    network: Recording, resolver: FakeResolver, *, allow_private: bool = False
) -> HttpWebhookSender:
    return HttpWebhookSender(
        SystemClock(),
        allow_private=allow_private,
        resolver=resolver,
        transport=httpx.MockTransport(network),
    )


def request_to(url: str) -> SendRequest:
    return SendRequest(url=url, secret=SECRET, message_id="evt-1", body=BODY)


def test_signed_headers_verify_with_standardwebhooks() -> None:
    headers = signed_headers(request_to("https://x/"), SystemClock().now())
    assert StandardWebhook(SECRET).verify(BODY, headers) == {"id": "evt-1", "type": "runtime.start"}
    assert headers["webhook-id"] == "evt-1"


async def test_the_request_goes_to_the_checked_address_under_its_host_name() -> None:
    network = Recording()
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34"]})
    sender = sender_for(network, resolver)
    result = await sender.send(request_to("https://hooks.example.com:8443/in?x=1"))
    await sender.aclose()
    assert (result.ok, result.status_code, result.error) == (True, 200, None)
    [sent] = network.requests
    assert str(sent.url) == "https://93.184.216.34:8443/in?x=1"
    assert sent.headers["host"] == "hooks.example.com:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"
    assert sent.content == BODY.encode()
    assert StandardWebhook(SECRET).verify(sent.content, dict(sent.headers))


@pytest.mark.parametrize(
    "addresses", [["10.0.0.7"], ["93.184.216.34", "127.0.0.1"], ["::ffff:169.254.169.254"], []]
)
async def test_a_name_resolving_inside_is_refused_when_connecting(addresses: list[str]) -> None:
    """DNS said public when the webhook was created; now it says otherwise."""
    network = Recording()
    sender = sender_for(network, FakeResolver({"hooks.example.com": addresses}))
    result = await sender.send(request_to("https://hooks.example.com/in"))
    await sender.aclose()
    assert result.status_code is None
    assert (result.error or "").startswith("refused:")
    assert network.requests == []


async def test_an_unresolvable_name_is_a_failed_attempt() -> None:
    sender = sender_for(Recording(), FakeResolver())
    result = await sender.send(request_to("https://gone.example.com/in"))
    await sender.aclose()
    assert result.status_code is None
    assert "cannot resolve or connect" in (result.error or "")


async def test_allowing_private_targets_skips_the_check() -> None:
    network = Recording(status=500)
    resolver = FakeResolver()
    sender = sender_for(network, resolver, allow_private=True)
    result = await sender.send(request_to("http://localhost:9000/in"))
    await sender.aclose()
    assert (result.status_code, result.error) == (500, "HTTP 500: nope")
    assert str(network.requests[0].url) == "http://localhost:9000/in"
    assert resolver.asked == []


async def test_an_ipv6_only_name_is_pinned_in_brackets() -> None:
    network = Recording()
    resolver = FakeResolver({"v6.example.com": ["2606:2800:220:1::1"]})
    sender = sender_for(network, resolver)
    result = await sender.send(request_to("http://v6.example.com/in"))
    await sender.aclose()
    assert result.ok
    [sent] = network.requests
    assert str(sent.url) == "http://[2606:2800:220:1::1]/in"
    assert sent.headers["host"] == "v6.example.com"
    assert "sni_hostname" not in sent.extensions
