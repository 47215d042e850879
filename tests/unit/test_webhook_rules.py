"""The pure webhook rules: forbidden addresses, URL form, event filters,
secrets, the retry schedule and a delivery's state after an attempt."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import timedelta

import pytest
from standardwebhooks import Webhook as StandardWebhook

from runplane.domain.webhooks.model import DeliveryStatus, InvalidWebhook, SendResult, Trigger
from runplane.domain.webhooks.rules import (
    RetrySchedule,
    after_attempt,
    event_types_of,
    forbidden_address,
    new_secret,
    parse_retry_schedule,
    parse_target,
    receives,
)
from tests.support.clock import EPOCH
from tests.support.webhooks import make_delivery, make_event, make_webhook


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "233.252.0.1",  # global-scope multicast is still multicast
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "::ffff:93.184.216.34", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://hooks.example.com/in", "hooks.example.com", 443),
        ("http://hooks.example.com:8080/in?x=1", "hooks.example.com", 8080),
        ("https://[2606:2800:220:1::1]/in", "2606:2800:220:1::1", 443),
        ("HTTPS://Hooks.Example.com./in", "hooks.example.com", 443),
    ],
)
def test_targets_are_parsed(url: str, host: str, port: int) -> None:
    target = parse_target(url)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://hooks.example.com/", "http:// or https://"),
        ("hooks.example.com/in", "http:// or https://"),
        ("https:///in", "no host"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com:99999/", "not valid"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(InvalidWebhook, match=complaint):
        parse_target(url)


def test_event_types_are_known_sorted_and_unique() -> None:
    assert event_types_of(["runtime.stop", "runtime.start", "runtime.stop"]) == (
        "runtime.start",
        "runtime.stop",
    )
    with pytest.raises(InvalidWebhook, match=r"runtime\.state\.changed"):
        event_types_of(["runtime.state.changed"])


def test_a_webhook_receives_its_types_of_its_team_after_it_was_created() -> None:
    later = EPOCH + timedelta(seconds=1)
    webhook = make_webhook(event_types=("runtime.stop",), at=EPOCH)
    assert receives(webhook, make_event(type_="runtime.stop", at=later).envelope())
    assert not receives(webhook, make_event(type_="runtime.start", at=later).envelope())
    assert not receives(webhook, make_event(type_="runtime.stop", team_id="team-b").envelope())
    early = make_event(type_="runtime.stop", at=EPOCH - timedelta(seconds=1))
    assert not receives(webhook, early.envelope())
    assert not receives(
        replace(webhook, enabled=False), make_event(type_="runtime.stop").envelope()
    )


def test_an_every_team_webhook_with_no_filter_receives_every_durable_type() -> None:
    webhook = make_webhook(team_id=None, at=EPOCH)
    for type_ in ("runtime.create", "runtime.remove", "runtime.unreachable"):
        assert receives(webhook, make_event(type_=type_, team_id="anyone").envelope())
    assert not receives(webhook, make_event(type_="runtime.state.changed").envelope())


def test_secrets_have_the_standard_webhooks_form() -> None:
    secret = new_secret(lambda n: bytes(range(n)))
    assert secret == "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
    signer = StandardWebhook(new_secret())
    assert len(signer._whsecret) == 24


@pytest.mark.parametrize(
    ("text", "delays"),
    [
        ("5,300,1800", (5.0, 300.0, 1800.0)),
        (" 0.2 , 0.5 ", (0.2, 0.5)),
        ("", ()),
        ("1,,2,", (1.0, 2.0)),
    ],
)
def test_retry_schedules_parse(text: str, delays: tuple[float, ...]) -> None:
    assert parse_retry_schedule(text) == delays


@pytest.mark.parametrize("text", ["5,soon", "-1", "inf", "nan"])
def test_bad_retry_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="retry schedule"):
        parse_retry_schedule(text)


def test_retry_delays_are_jittered_within_bounds_and_end() -> None:
    schedule = RetrySchedule((10.0, 100.0), jitter=0.1)
    assert schedule.delay_after(1, 0.0) == pytest.approx(9.0)
    assert schedule.delay_after(1, 0.5) == pytest.approx(10.0)
    assert schedule.delay_after(2, 0.999999) == pytest.approx(110.0, rel=1e-5)
    assert schedule.delay_after(3, 0.5) is None
    assert schedule.delay_after(0, 0.5) is None


def _after(result: SendResult, trigger: Trigger = Trigger.SCHEDULED, **changes: object):  # type: ignore[no-untyped-def]
    delivery = make_delivery(at=EPOCH, **changes)
    schedule = RetrySchedule((5.0, 300.0), jitter=0.0)
    return after_attempt(
        delivery, result, trigger=trigger, now=EPOCH, schedule=schedule, random_unit=0.5
    )


def test_a_success_ends_the_delivery() -> None:
    done = _after(SendResult(latency_ms=3, status_code=204))
    assert (done.status, done.attempts, done.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 1, None)
    assert (done.last_status_code, done.last_latency_ms) == (204, 3)


def test_failures_follow_the_schedule_then_are_abandoned() -> None:
    failed = SendResult(latency_ms=3, status_code=500, error="HTTP 500")
    first = _after(failed)
    assert first.status is DeliveryStatus.PENDING
    assert first.next_attempt_at == EPOCH + timedelta(seconds=5)
    second = _after(failed, attempts=1)
    assert second.next_attempt_at == EPOCH + timedelta(seconds=300)
    last = _after(failed, attempts=2)
    assert (last.status, last.attempts, last.next_attempt_at) == (DeliveryStatus.ABANDONED, 3, None)
    assert last.last_error == "HTTP 500"


def test_410_abandons_at_once() -> None:
    assert _after(SendResult(latency_ms=3, status_code=410)).status is DeliveryStatus.ABANDONED


def test_a_failed_manual_attempt_keeps_scheduled_retries_or_ends_failed() -> None:
    failed = SendResult(latency_ms=3, error="timed out")
    scheduled_at = EPOCH + timedelta(seconds=60)
    pending = _after(failed, Trigger.MANUAL, next_attempt_at=scheduled_at, attempts=1)
    assert (pending.status, pending.next_attempt_at) == (DeliveryStatus.PENDING, scheduled_at)
    abandoned = _after(failed, Trigger.MANUAL, status=DeliveryStatus.ABANDONED, attempts=3)
    assert (abandoned.status, abandoned.attempts) == (DeliveryStatus.FAILED, 4)
    test = _after(failed, Trigger.TEST, next_attempt_at=None)
    assert test.status is DeliveryStatus.FAILED
