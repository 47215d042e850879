"""WebhookService and Deliverer on fakes: target checks (DNS included), team
scoping, updates, test pings, redeliveries, retries, and disabling."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook as StandardWebhook

from runplane.domain.webhooks.model import DeliveryStatus, InvalidWebhook, SendResult, Trigger
from runplane.services.webhooks.delivery import GONE_REASON
from runplane.services.webhooks.management import (
    DISABLED_EVENT_TYPE,
    TEST_EVENT_TYPE,
    WebhookChanges,
    webhook_envelope,
)
from tests.support.webhooks import WebhookWorld, make_delivery, status


@pytest.fixture
def hooks() -> WebhookWorld:
    return WebhookWorld.build()


async def test_create_stores_the_webhook_and_shows_the_secret_once(hooks: WebhookWorld) -> None:
    webhook, secret = await hooks.service.create(
        url="https://hooks.example.com/in", team_id="team-a", event_types=["runtime.stop"]
    )
    assert secret.startswith("whsec_")
    StandardWebhook(secret)  # the form the library takes
    assert await hooks.store.secret(webhook.id) == secret
    assert await hooks.service.get(webhook.id, "team-a") == webhook
    assert webhook.event_types == ("runtime.stop",)
    assert webhook.enabled


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("internal.example.com", ["10.1.2.3"]),
        ("localhost", ["127.0.0.1", "::1"]),
        ("metadata.example.com", ["169.254.169.254"]),
        ("mixed.example.com", ["93.184.216.34", "192.168.0.10"]),  # one bad address is enough
        ("v6.example.com", ["fd00::5"]),
        ("mapped.example.com", ["::ffff:127.0.0.1"]),
    ],
)
async def test_names_resolving_to_private_addresses_are_refused(
    hooks: WebhookWorld, host: str, addresses: list[str]
) -> None:
    hooks.resolver.records[host] = addresses
    with pytest.raises(InvalidWebhook, match="RUNPLANE_WEBHOOK_ALLOW_PRIVATE"):
        await hooks.service.create(url=f"https://{host}/in", team_id="team-a")
    assert await hooks.store.list_webhooks() == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/in", "http://[::1]/in", "https://[fe80::1]/", "http://10.0.0.8"]
)
async def test_private_address_literals_are_refused_without_dns(
    hooks: WebhookWorld, url: str
) -> None:
    with pytest.raises(InvalidWebhook, match="resolves to"):
        await hooks.service.create(url=url, team_id="team-a")
    assert hooks.resolver.asked == []


async def test_a_name_that_does_not_resolve_is_refused(hooks: WebhookWorld) -> None:
    with pytest.raises(InvalidWebhook, match="does not resolve"):
        await hooks.service.create(url="https://nowhere.example/in", team_id="team-a")


async def test_private_targets_are_allowed_when_configured() -> None:
    hooks = WebhookWorld.build(allow_private=True)
    webhook, _ = await hooks.service.create(url="http://127.0.0.1:9000/in", team_id=None)
    assert webhook.url == "http://127.0.0.1:9000/in"
    assert hooks.resolver.asked == []


async def test_bad_event_types_are_refused(hooks: WebhookWorld) -> None:
    with pytest.raises(InvalidWebhook, match="unknown event types"):
        await hooks.service.create(
            url="https://hooks.example.com/in", team_id="team-a", event_types=["runtime.explode"]
        )


async def test_a_team_sees_only_its_own_webhooks(hooks: WebhookWorld) -> None:
    mine, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    theirs, _ = await hooks.service.create(url="https://hooks.example.com/b", team_id="team-b")
    every, _ = await hooks.service.create(url="https://hooks.example.com/c", team_id=None)
    assert await hooks.service.list_webhooks("team-a") == [mine]
    assert await hooks.service.list_webhooks(None) == [mine, theirs, every]
    assert await hooks.service.list_webhooks(None, team_id="team-b") == [theirs]
    assert await hooks.service.get(theirs.id, "team-a") is None
    assert await hooks.service.get(every.id, "team-a") is None
    assert await hooks.service.update(theirs.id, "team-a", WebhookChanges(enabled=False)) is None
    assert not await hooks.service.delete(theirs.id, "team-a")
    assert await hooks.service.deliveries(theirs.id, "team-a") is None
    assert await hooks.service.send_test(theirs.id, "team-a") is None
    assert hooks.sender.requests == []
    assert await hooks.service.get(theirs.id, None) == theirs


async def test_update_checks_the_new_url_and_enabling_clears_the_failure(
    hooks: WebhookWorld,
) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    hooks.resolver.records["evil.example.com"] = ["127.0.0.1"]
    with pytest.raises(InvalidWebhook):
        await hooks.service.update(
            webhook.id, "team-a", WebhookChanges(url="https://evil.example.com/")
        )
    await hooks.store.disable(webhook.id, GONE_REASON, hooks.clock.now())
    await hooks.store.note_failure(webhook.id, hooks.clock.now())
    hooks.clock.advance(1)
    updated = await hooks.service.update(
        webhook.id, "team-a", WebhookChanges(enabled=True, event_types=("runtime.pause",))
    )
    assert updated is not None
    assert updated.enabled
    assert (updated.disabled_reason, updated.failing_since) == (None, None)
    assert updated.event_types == ("runtime.pause",)
    assert updated.updated_at == hooks.clock.now()
    assert updated.url == "https://hooks.example.com/a"


async def test_delete_takes_the_deliveries_along(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    await hooks.store.add_deliveries([make_delivery(webhook_id=webhook.id)])
    assert await hooks.service.delete(webhook.id, "team-a")
    assert await hooks.service.get(webhook.id, None) is None
    assert hooks.store.deliveries == {}


async def test_a_test_ping_is_signed_sent_and_listed(hooks: WebhookWorld) -> None:
    webhook, secret = await hooks.service.create(
        url="https://hooks.example.com/a", team_id="team-a"
    )
    outcome = await hooks.service.send_test(webhook.id, "team-a")
    assert outcome is not None
    log, attempt = outcome
    assert attempt is not None
    assert (attempt.succeeded, attempt.status_code, attempt.trigger) == (True, 200, Trigger.TEST)
    assert log.delivery.status is DeliveryStatus.SUCCEEDED
    assert log.delivery.event_type == TEST_EVENT_TYPE
    [request] = hooks.sender.requests
    assert (request.url, request.secret) == (webhook.url, secret)
    assert request.message_id == log.delivery.event_id
    listed = await hooks.service.deliveries(webhook.id, "team-a")
    assert listed is not None
    assert [(d.delivery.id, len(d.attempts)) for d in listed] == [(log.delivery.id, 1)]


async def test_a_failed_test_ping_is_not_retried(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    hooks.sender.answer(status(503))
    outcome = await hooks.service.send_test(webhook.id, "team-a")
    assert outcome is not None
    assert outcome[0].delivery.status is DeliveryStatus.FAILED
    assert outcome[0].delivery.next_attempt_at is None


async def test_scheduled_failures_retry_with_the_same_message_id(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    delivery = make_delivery(webhook_id=webhook.id, at=hooks.clock.now())
    await hooks.store.add_deliveries([delivery])
    hooks.sender.answer(status(500), status(502), status(200))
    for wait_s in (0, 5, 300):
        hooks.clock.advance(wait_s)
        [due] = await hooks.store.claim_due(
            hooks.clock.now(), lease_until=hooks.clock.now(), limit=10
        )
        await hooks.deliverer.attempt(due, Trigger.SCHEDULED)
    stored = await hooks.store.get_delivery(delivery.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert {r.message_id for r in hooks.sender.requests} == {delivery.event_id}
    attempts = (await hooks.store.attempts_of([delivery.id]))[delivery.id]
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 502), (3, 200)]
    assert (await hooks.service.get(webhook.id, None)).failing_since is None  # type: ignore[union-attr]


async def test_410_disables_the_webhook_and_tells(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    await hooks.store.add_deliveries([make_delivery(webhook_id=webhook.id, at=hooks.clock.now())])
    hooks.sender.answer(status(410))
    [due] = await hooks.store.claim_due(hooks.clock.now(), lease_until=hooks.clock.now(), limit=1)
    await hooks.deliverer.attempt(due, Trigger.SCHEDULED)
    stored = await hooks.service.get(webhook.id, None)
    assert stored is not None
    assert (stored.enabled, stored.disabled_reason) == (False, GONE_REASON)
    assert hooks.disabled == [(webhook.id, GONE_REASON)]
    assert (await hooks.store.get_delivery(due.id)).status is DeliveryStatus.ABANDONED  # type: ignore[union-attr]


async def test_failing_longer_than_the_window_disables_once() -> None:
    hooks = WebhookWorld.build(schedule=(10,) * 20, failure_window_s=60)
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    await hooks.store.add_deliveries([make_delivery(webhook_id=webhook.id, at=hooks.clock.now())])
    hooks.sender.answer(SendResult(latency_ms=1000, error="connection refused"))
    first_failure = hooks.clock.now()
    for _ in range(8):
        for due in await hooks.store.claim_due(
            hooks.clock.now(), lease_until=hooks.clock.now(), limit=1
        ):
            await hooks.deliverer.attempt(due, Trigger.SCHEDULED)
        hooks.clock.advance(10)
    stored = await hooks.service.get(webhook.id, None)
    assert stored is not None
    assert not stored.enabled
    assert stored.failing_since == first_failure
    assert [w for w, _ in hooks.disabled] == [webhook.id]
    assert "every delivery failed since" in hooks.disabled[0][1]
    # The delivery still pending when its webhook was disabled is abandoned, unsent.
    sent = len(hooks.sender.requests)
    for due in await hooks.store.claim_due(
        hooks.clock.now(), lease_until=hooks.clock.now(), limit=1
    ):
        assert await hooks.deliverer.attempt(due, Trigger.SCHEDULED) is None
    assert len(hooks.sender.requests) == sent
    [delivery] = hooks.store.deliveries.values()
    assert delivery.status is DeliveryStatus.ABANDONED
    assert "webhook disabled" in (delivery.last_error or "")


async def test_a_success_ends_the_failure_streak(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    hooks.sender.answer(status(500), status(200))
    await hooks.service.send_test(webhook.id, "team-a")
    assert (await hooks.service.get(webhook.id, None)).failing_since is not None  # type: ignore[union-attr]
    await hooks.service.send_test(webhook.id, "team-a")
    assert (await hooks.service.get(webhook.id, None)).failing_since is None  # type: ignore[union-attr]


async def test_redeliver_attempts_an_abandoned_delivery_again(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    delivery = make_delivery(
        webhook_id=webhook.id, status=DeliveryStatus.ABANDONED, attempts=4, next_attempt_at=None
    )
    await hooks.store.add_deliveries([delivery])
    outcome = await hooks.service.redeliver(webhook.id, delivery.id, "team-a")
    assert outcome is not None
    log, attempt = outcome
    assert attempt is not None
    assert (attempt.number, attempt.trigger) == (5, Trigger.MANUAL)
    assert (log.delivery.status, log.delivery.attempts) == (DeliveryStatus.SUCCEEDED, 5)
    assert hooks.sender.requests[0].message_id == delivery.event_id
    assert await hooks.service.redeliver(webhook.id, "dlv-nope", "team-a") is None
    assert await hooks.service.redeliver(webhook.id, delivery.id, "team-b") is None


async def test_the_disabled_notice_is_a_cloudevent_about_the_webhook(hooks: WebhookWorld) -> None:
    webhook, _ = await hooks.service.create(url="https://hooks.example.com/a", team_id="team-a")
    envelope = json.loads(
        webhook_envelope(
            webhook,
            event_id="evt-9",
            event_type=DISABLED_EVENT_TYPE,
            at=hooks.clock.now(),
            reason=GONE_REASON,
        )
    )
    assert envelope == {
        "specversion": "1.0",
        "id": "evt-9",
        "source": "/runplane",
        "type": "webhook.disabled",
        "subject": webhook.id,
        "time": "2025-01-01T00:00:00.000Z",
        "datacontenttype": "application/json",
        "data": {"team_id": "team-a", "webhook_id": webhook.id, "reason": GONE_REASON},
    }
