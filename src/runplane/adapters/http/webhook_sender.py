"""HttpWebhookSender: Standard Webhooks deliveries over httpx.

Each POST carries the body as is, `webhook-id` (the event id, the same on
every retry), `webhook-timestamp` and `webhook-signature` (`v1,` + base64
HMAC-SHA256 of `id.timestamp.body`, computed by the standardwebhooks library).

Guards: one overall timeout, redirects never followed (a 3xx is a failure),
at most `max_response_bytes` of the answer read (undecoded, so a compressed
bomb cannot grow), no proxies from the environment. Unless private targets are
allowed, the host is resolved here and every address it resolves to must be
public; the request then goes to the checked address itself (the URL's host is
replaced by it, the Host header and the TLS server name stay the original
host), so a DNS answer that changes between the check and the connect cannot
steer the request inside. Pinned connections are not kept alive: a pooled TLS
connection to one IP must not carry a request meant for another host name."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook as Signer

from runplane import __version__
from runplane.domain.webhooks.model import InvalidWebhook, Resolver, SendRequest, SendResult
from runplane.domain.webhooks.rules import Target, first_forbidden, parse_address, parse_target
from runplane.ports.system import Clock

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
ERROR_EXCERPT_CHARS = 256
USER_AGENT = f"runplane-webhooks/{__version__}"


class TargetRefused(Exception):
    """The target resolves to an address webhooks may not reach."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, without blocking)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def signed_headers(request: SendRequest, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of `request`, signed at `now`."""
    timestamp = int(now.timestamp())
    signature = Signer(request.secret).sign(
        request.message_id, datetime.fromtimestamp(timestamp, UTC), request.body
    )
    return {
        "webhook-id": request.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


class HttpWebhookSender:
    def __init__(
        self,
        clock: Clock,
        *,
        allow_private: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        resolver: Resolver = resolve_host,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` replaces the network (tests)."""
        if timeout_s <= 0 or max_response_bytes < 0:
            raise ValueError("timeout_s must be positive and max_response_bytes not negative")
        self.clock = clock
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.resolver = resolver
        keepalive = None if allow_private else 0
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=keepalive),
            headers={"user-agent": USER_AGENT},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpWebhookSender(allow_private={self.allow_private})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, request: SendRequest) -> SendResult:
        started = time.monotonic()
        status_code: int | None = None
        error: str | None
        try:
            async with asyncio.timeout(self.timeout_s):
                status_code, error = await self._post(request)
        except TimeoutError:
            error = f"timed out after {self.timeout_s:g} s"
        except (TargetRefused, InvalidWebhook) as exc:
            error = f"refused: {exc}"
        except OSError as exc:
            error = f"cannot resolve or connect: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_CHARS] or type(exc).__name__
        latency_ms = int((time.monotonic() - started) * 1000)
        return SendResult(latency_ms=latency_ms, status_code=status_code, error=error)

    async def _post(self, request: SendRequest) -> tuple[int, str | None]:
        target = parse_target(request.url)
        url, headers, extensions = await self._route(target)
        headers.update(signed_headers(request, self.clock.now()))
        async with self._client.stream(
            "POST", url, content=request.body.encode(), headers=headers, extensions=extensions
        ) as response:
            excerpt = await self._read_capped(response)
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, _describe(response, excerpt)

    async def _route(self, target: Target) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """Where to connect: the URL as is when private targets are allowed, else
        the URL pinned to a checked address of its host."""
        url = httpx.URL(target.url)
        if self.allow_private:
            return url, {}, {}
        literal = parse_address(target.host)
        addresses = [target.host] if literal else await self.resolver(target.host, target.port)
        if not addresses:
            raise TargetRefused(f"{target.host!r} resolves to no address")
        refused = first_forbidden(addresses)
        if refused is not None:
            raise TargetRefused(f"{target.host!r} resolves to {refused}, a non-public address")
        if literal:
            return url, {}, {}
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        host_header = url.netloc.decode("ascii")
        return url.copy_with(host=addresses[0]), {"host": host_header}, extensions

    async def _read_capped(self, response: httpx.Response) -> bytes:
        received = bytearray()
        async for chunk in response.aiter_raw():
            received.extend(chunk[: self.max_response_bytes - len(received)])
            if len(received) >= self.max_response_bytes:
                break
        return bytes(received)


def _describe(response: httpx.Response, excerpt: bytes) -> str:
    if response.is_redirect:
        location = response.headers.get("location", "")[:ERROR_EXCERPT_CHARS]
        return f"HTTP {response.status_code}: redirect to {location!r} not followed"
    message = f"HTTP {response.status_code}"
    encoding = response.headers.get("content-encoding", "identity").lower()
    text = excerpt[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
    if text and encoding == "identity":
        message += f": {text}"
    return message
