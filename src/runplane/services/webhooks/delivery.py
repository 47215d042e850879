"""One attempt of one delivery: sign and send, record, react.

Shared by the scheduled deliveries (the dispatcher's delivery loop) and the
manual ones (test pings, redeliveries). After the attempt: a success clears the
webhook's failing streak; 410 Gone disables the webhook; any other failure
starts or extends the streak, and a streak longer than `failure_window_s`
disables the webhook too."""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import timedelta

from prometheus_client import Counter, Histogram

from runplane.domain.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DisabledCallback,
    SecretUnreadable,
    SendRequest,
    SendResult,
    Trigger,
    Webhook,
)
from runplane.domain.webhooks.rules import RetrySchedule, after_attempt, failure_summary
from runplane.ports.system import Clock
from runplane.ports.webhooks import WebhookSender, WebhookStore

logger = logging.getLogger(__name__)

DEFAULT_FAILURE_WINDOW_S = 5 * 24 * 3600.0
"""Standard Webhooks suggests disabling an endpoint failing for about five days."""
GONE_REASON = "the endpoint answered 410 Gone"

DELIVERIES = Counter(
    "runplane_webhook_deliveries",
    "Webhook delivery attempts, by what they left the delivery as "
    "(succeeded, retrying, failed, abandoned).",
    ["outcome"],
)
LATENCY = Histogram(
    "runplane_webhook_delivery_latency_seconds",
    "Time from sending a webhook delivery to its answer (or failure).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _outcome_label(delivery: Delivery) -> str:
    if delivery.status is DeliveryStatus.PENDING:
        return "retrying"
    return str(delivery.status)


class Deliverer:
    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        clock: Clock,
        *,
        schedule: RetrySchedule,
        failure_window_s: float = DEFAULT_FAILURE_WINDOW_S,
        on_disabled: DisabledCallback | None = None,
        random_unit: random.Random | None = None,
    ) -> None:
        if failure_window_s <= 0:
            raise ValueError(f"failure_window_s must be positive, got {failure_window_s}")
        self.store = store
        self.sender = sender
        self.clock = clock
        self.schedule = schedule
        self.failure_window_s = failure_window_s
        self.on_disabled = on_disabled
        self._random = random_unit or random.Random()

    async def attempt(self, delivery: Delivery, trigger: Trigger) -> Attempt | None:
        """Attempt `delivery` now. None when nothing was attempted: the webhook is
        gone, or disabled (a scheduled delivery is then abandoned)."""
        webhook = await self.store.get(delivery.webhook_id)
        if webhook is None:
            return None
        if not webhook.enabled and trigger is Trigger.SCHEDULED:
            reason = f"webhook disabled: {webhook.disabled_reason or 'by request'}"
            await self.store.abandon(delivery.id, reason, self.clock.now())
            DELIVERIES.labels("abandoned").inc()
            return None
        result = await self._send(webhook, delivery)
        now = self.clock.now()
        updated = after_attempt(
            delivery,
            result,
            trigger=trigger,
            now=now,
            schedule=self.schedule,
            random_unit=self._random.random(),
        )
        attempt = Attempt(
            delivery_id=delivery.id,
            webhook_id=webhook.id,
            number=updated.attempts,
            trigger=trigger,
            attempted_at=now,
            succeeded=result.ok,
            latency_ms=result.latency_ms,
            status_code=result.status_code,
            error=result.error,
        )
        if not await self.store.record_attempt(updated, attempt):
            logger.info(
                "webhook attempt not recorded: the delivery changed meanwhile",
                extra={"webhook_id": webhook.id, "delivery_id": delivery.id},
            )
            return attempt
        DELIVERIES.labels(_outcome_label(updated)).inc()
        LATENCY.observe(result.latency_ms / 1000)
        self._log(webhook, updated, result)
        await self._react(webhook, result)
        return attempt

    async def _send(self, webhook: Webhook, delivery: Delivery) -> SendResult:
        try:
            secret = await self.store.secret(webhook.id)
        except SecretUnreadable:
            logger.error(
                "webhook secret cannot be decrypted; was the webhook key file replaced?",
                extra={"webhook_id": webhook.id},
            )
            return SendResult(latency_ms=0, error="the signing secret cannot be decrypted")
        if secret is None:
            return SendResult(latency_ms=0, error="the webhook was deleted")
        request = SendRequest(
            url=webhook.url, secret=secret, message_id=delivery.event_id, body=delivery.payload
        )
        return await self.sender.send(request)

    async def _react(self, webhook: Webhook, result: SendResult) -> None:
        if result.ok:
            if webhook.failing_since is not None:
                await self.store.note_success(webhook.id)
            return
        now = self.clock.now()
        if result.gone:
            await self._disable(webhook, GONE_REASON)
            return
        failing_since = await self.store.note_failure(webhook.id, now)
        if failing_since is None or not webhook.enabled:
            return
        if now - failing_since >= timedelta(seconds=self.failure_window_s):
            since = failing_since.isoformat(timespec="seconds")
            await self._disable(webhook, f"every delivery failed since {since}")

    async def _disable(self, webhook: Webhook, reason: str) -> None:
        if not await self.store.disable(webhook.id, reason, self.clock.now()):
            return
        logger.warning(
            "webhook disabled", extra={"webhook_id": webhook.id, "team_id": webhook.team_id}
        )
        if self.on_disabled is None:
            return
        disabled = replace(webhook, enabled=False, disabled_reason=reason)
        try:
            await self.on_disabled(disabled, reason)
        except Exception:
            logger.exception("webhook disabled callback failed", extra={"webhook_id": webhook.id})

    @staticmethod
    def _log(webhook: Webhook, delivery: Delivery, result: SendResult) -> None:
        if result.ok:
            return
        logger.info(
            "webhook delivery attempt failed",
            extra={
                "webhook_id": webhook.id,
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "attempts": delivery.attempts,
                "status": str(delivery.status),
                "error": failure_summary(result),
            },
        )
