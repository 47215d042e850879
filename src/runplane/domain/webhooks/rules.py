"""The rules of webhooks, as pure functions: which targets are allowed, which
events a webhook receives, how secrets look and when a failed delivery is
attempted again."""

from __future__ import annotations

import base64
import ipaddress
import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from runplane.domain.lifecycle_events import DURABLE_TYPES
from runplane.domain.webhooks.model import (
    Delivery,
    DeliveryStatus,
    InvalidWebhook,
    SendResult,
    Trigger,
    Webhook,
)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MAX_URL_LENGTH = 2048
SCHEMES = {"http": 80, "https": 443}
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_bytes(SECRET_BYTES)).decode("ascii")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo):
    a packet to it may end at that IPv4 address."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.append(address.teredo[1])
    return found


def _public(address: IpAddress) -> bool:
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def forbidden_address(address: IpAddress) -> bool:
    """Whether a webhook must not connect to `address` unless private targets are
    allowed: loopback, private, link-local, shared, multicast, reserved or
    unspecified — or an IPv6 address that embeds such an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if address.ipv4_mapped is not None or address in NAT64_PREFIX:
            return not all(_public(v4) for v4 in embedded)  # only the IPv4 one counts
        if not all(_public(v4) for v4 in embedded):
            return True
    return not _public(address)


def parse_address(text: str) -> IpAddress | None:
    """`text` as an IP address (a zone suffix `%eth0` dropped), or None."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def first_forbidden(addresses: Iterable[str]) -> str | None:
    """The first of `addresses` a webhook must not reach (unparsable included)."""
    for text in addresses:
        address = parse_address(text)
        if address is None or forbidden_address(address):
            return text
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook URL: its host (without brackets) and port."""

    url: str
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    """Check the form of a webhook URL: http or https, a host, no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhook(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidWebhook("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhook(f"url is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidWebhook("url must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhook("url has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("url must not carry credentials (user:password@)")
    return Target(url, scheme, parts.hostname.rstrip("."), port or SCHEMES[scheme])


def event_types_of(requested: Iterable[str]) -> tuple[str, ...]:
    """The normalised filter: sorted, unique, each a subscribable type."""
    types = tuple(sorted(set(requested)))
    unknown = [t for t in types if t not in DURABLE_TYPES]
    if unknown:
        known = ", ".join(sorted(DURABLE_TYPES))
        raise InvalidWebhook(f"unknown event types {unknown}: subscribable are {known}")
    return types


def receives(webhook: Webhook, event: dict[str, Any]) -> bool:
    """Whether `webhook` gets `event` (a parsed envelope): enabled, the type in its
    filter (empty: every subscribable type), the team its own (or it serves
    every team), and the event not older than the webhook."""
    if not webhook.enabled:
        return False
    event_type = event.get("type")
    wanted = webhook.event_types or DURABLE_TYPES
    if event_type not in wanted:
        return False
    data = event.get("data")
    team_id = data.get("team_id") if isinstance(data, dict) else None
    if webhook.team_id is not None and team_id != webhook.team_id:
        return False
    occurred = _event_time(event.get("time"))
    created = webhook.created_at.replace(microsecond=webhook.created_at.microsecond // 1000 * 1000)
    return occurred is None or occurred >= created


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """`"5,300,1800"` as delays in seconds (blank: no retries)."""
    delays: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            delay_s = float(part)
        except ValueError:
            raise ValueError(f"retry schedule {text!r}: {part!r} is not a number") from None
        if not math.isfinite(delay_s) or delay_s < 0:
            raise ValueError(f"retry schedule {text!r}: {part!r} is not a delay in seconds")
        delays.append(delay_s)
    return tuple(delays)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays after failed attempts 1, 2, ...; past the last, no more attempts.
    Each delay is spread by ±`jitter` so receivers coming back are not hit by
    every delivery at once."""

    delays_s: tuple[float, ...]
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if any(d < 0 or not math.isfinite(d) for d in self.delays_s):
            raise ValueError("retry delays must be finite and not negative")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def delay_after(self, failed_attempts: int, random_unit: float) -> float | None:
        """The delay after the `failed_attempts`-th failure; None when it was the
        last allowed. `random_unit` is in [0, 1)."""
        if not 1 <= failed_attempts <= len(self.delays_s):
            return None
        base = self.delays_s[failed_attempts - 1]
        return base * (1 + self.jitter * (2 * random_unit - 1))


def after_attempt(
    delivery: Delivery,
    result: SendResult,
    *,
    trigger: Trigger,
    now: datetime,
    schedule: RetrySchedule,
    random_unit: float,
) -> Delivery:
    """The delivery once `result` is known. A scheduled failure waits for the next
    retry, or is abandoned past the schedule; a manual or test failure ends as
    `failed` unless the delivery still has retries scheduled."""
    attempts = delivery.attempts + 1
    status, next_at = _next_state(delivery, result, trigger, now, schedule, attempts, random_unit)
    return replace(
        delivery,
        status=status,
        attempts=attempts,
        next_attempt_at=next_at,
        updated_at=now,
        last_status_code=result.status_code,
        last_error=result.error,
        last_latency_ms=result.latency_ms,
    )


def _next_state(
    delivery: Delivery,
    result: SendResult,
    trigger: Trigger,
    now: datetime,
    schedule: RetrySchedule,
    attempts: int,
    random_unit: float,
) -> tuple[DeliveryStatus, datetime | None]:
    if result.ok:
        return DeliveryStatus.SUCCEEDED, None
    if result.gone:
        return DeliveryStatus.ABANDONED, None
    if trigger is Trigger.SCHEDULED:
        delay_s = schedule.delay_after(attempts, random_unit)
        if delay_s is None:
            return DeliveryStatus.ABANDONED, None
        return DeliveryStatus.PENDING, now + timedelta(seconds=delay_s)
    if delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_at is not None:
        return DeliveryStatus.PENDING, delivery.next_attempt_at
    return DeliveryStatus.FAILED, None


def failure_summary(result: SendResult) -> str:
    return result.error or f"HTTP {result.status_code}"
