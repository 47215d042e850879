"""Managing webhooks: create, list, get, update, delete; their deliveries; test
pings and redeliveries.

Targets are checked at create (and update) time: http or https, and — unless
private targets are allowed — a host that resolves only to public addresses
(the sender checks again when it connects, since DNS answers change).
`team_scope` is the caller's team, or None for an admin: a webhook outside the
scope is reported as absent."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from runplane.domain.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryLog,
    DeliveryStatus,
    InvalidWebhook,
    Resolver,
    Trigger,
    Webhook,
)
from runplane.domain.webhooks.rules import (
    event_types_of,
    first_forbidden,
    new_secret,
    parse_address,
    parse_target,
)
from runplane.ports.system import Clock, TokenGenerator
from runplane.ports.webhooks import WebhookStore
from runplane.services.webhooks.delivery import Deliverer

logger = logging.getLogger(__name__)

TEST_EVENT_TYPE = "runplane.webhook.test"
DISABLED_EVENT_TYPE = "webhook.disabled"
MAX_DELIVERIES_LISTED = 500


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_envelope(
    webhook: Webhook,
    *,
    event_id: str,
    event_type: str,
    at: datetime,
    source: str = "/runplane",
    **data: object,
) -> str:
    """A CloudEvents 1.0 envelope about `webhook` (subject: its id), as JSON:
    the test ping, and the `webhook.disabled` notice the composition root may
    publish from the Deliverer's `on_disabled` callback."""
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "subject": webhook.id,
        "time": _rfc3339(at),
        "datacontenttype": "application/json",
        "data": {"team_id": webhook.team_id, "webhook_id": webhook.id, **data},
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class WebhookChanges:
    """A partial update: None leaves a field as it is."""

    url: str | None = None
    event_types: tuple[str, ...] | None = None
    enabled: bool | None = None


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        deliverer: Deliverer,
        clock: Clock,
        tokens: TokenGenerator,
        *,
        resolver: Resolver,
        allow_private: bool = False,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.tokens = tokens
        self.resolver = resolver
        self.allow_private = allow_private
        self._random_bytes = random_bytes

    async def check_url(self, url: str) -> str:
        """`url` if a webhook may target it; raises InvalidWebhook otherwise."""
        target = parse_target(url)
        if self.allow_private:
            return url
        literal = parse_address(target.host)
        if literal is not None:
            addresses = [target.host]
        else:
            try:
                addresses = await self.resolver(target.host, target.port)
            except OSError as exc:
                raise InvalidWebhook(f"url host {target.host!r} does not resolve") from exc
        if not addresses:
            raise InvalidWebhook(f"url host {target.host!r} does not resolve")
        refused = first_forbidden(addresses)
        if refused is not None:
            raise InvalidWebhook(
                f"url host {target.host!r} resolves to {refused}, a loopback, private, "
                "link-local, multicast or reserved address; targets there are refused "
                "(RUNPLANE_WEBHOOK_ALLOW_PRIVATE=true allows them)"
            )
        return url

    async def create(
        self,
        *,
        url: str,
        team_id: str | None,
        event_types: Iterable[str] = (),
        enabled: bool = True,
    ) -> tuple[Webhook, str]:
        """The new webhook and its signing secret (shown this once)."""
        types = event_types_of(event_types)
        await self.check_url(url)
        now = self.clock.now()
        webhook = Webhook(
            id="wh_" + self.tokens.new_token(),
            team_id=team_id,
            url=url,
            event_types=types,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            disabled_reason=None if enabled else "created disabled",
        )
        secret = new_secret(self._random_bytes)
        await self.store.add(webhook, secret)
        logger.info("webhook created", extra={"webhook_id": webhook.id, "team_id": team_id})
        return webhook, secret

    async def list_webhooks(
        self, team_scope: str | None, *, team_id: str | None = None
    ) -> list[Webhook]:
        """A team's webhooks; for an admin (scope None) every one, or `team_id`'s."""
        if team_scope is not None:
            return await self.store.list_webhooks(team_id=team_scope)
        return await self.store.list_webhooks(team_id=team_id)

    async def get(self, webhook_id: str, team_scope: str | None) -> Webhook | None:
        webhook = await self.store.get(webhook_id)
        if webhook is None or (team_scope is not None and webhook.team_id != team_scope):
            return None
        return webhook

    async def update(
        self, webhook_id: str, team_scope: str | None, changes: WebhookChanges
    ) -> Webhook | None:
        webhook = await self.get(webhook_id, team_scope)
        if webhook is None:
            return None
        values: dict[str, Any] = {"updated_at": self.clock.now()}
        if changes.url is not None and changes.url != webhook.url:
            values["url"] = await self.check_url(changes.url)
        if changes.event_types is not None:
            values["event_types"] = event_types_of(changes.event_types)
        if changes.enabled is True and not webhook.enabled:
            values.update(enabled=True, disabled_reason=None, failing_since=None)
        elif changes.enabled is False and webhook.enabled:
            values.update(enabled=False, disabled_reason="disabled by request")
        updated = await self.store.update(replace(webhook, **values))
        if updated is not None:
            logger.info("webhook updated", extra={"webhook_id": webhook_id})
        return updated

    async def delete(self, webhook_id: str, team_scope: str | None) -> bool:
        if await self.get(webhook_id, team_scope) is None:
            return False
        deleted = await self.store.delete(webhook_id)
        if deleted:
            logger.info("webhook deleted", extra={"webhook_id": webhook_id})
        return deleted

    async def deliveries(
        self, webhook_id: str, team_scope: str | None, *, limit: int = 50
    ) -> list[DeliveryLog] | None:
        """The newest deliveries with their attempts; None when no such webhook."""
        if await self.get(webhook_id, team_scope) is None:
            return None
        listed = await self.store.list_deliveries(
            webhook_id, limit=max(1, min(limit, MAX_DELIVERIES_LISTED))
        )
        attempts = await self.store.attempts_of([d.id for d in listed])
        return [DeliveryLog(d, list(attempts.get(d.id, []))) for d in listed]

    async def delivery(
        self, webhook_id: str, delivery_id: str, team_scope: str | None
    ) -> DeliveryLog | None:
        if await self.get(webhook_id, team_scope) is None:
            return None
        found = await self.store.get_delivery(delivery_id)
        if found is None or found.webhook_id != webhook_id:
            return None
        attempts = await self.store.attempts_of([delivery_id])
        return DeliveryLog(found, list(attempts.get(delivery_id, [])))

    async def send_test(
        self, webhook_id: str, team_scope: str | None
    ) -> tuple[DeliveryLog, Attempt | None] | None:
        """Send a ping event now (disabled webhooks too, to check a fix before
        enabling again); it is kept among the deliveries and not retried."""
        webhook = await self.get(webhook_id, team_scope)
        if webhook is None:
            return None
        delivery = self._test_delivery(webhook)
        await self.store.add_deliveries([delivery])
        return await self._attempt_now(delivery, Trigger.TEST)

    async def redeliver(
        self, webhook_id: str, delivery_id: str, team_scope: str | None
    ) -> tuple[DeliveryLog, Attempt | None] | None:
        """Attempt a delivery again now, whatever its status (same `webhook-id`)."""
        log = await self.delivery(webhook_id, delivery_id, team_scope)
        if log is None:
            return None
        return await self._attempt_now(log.delivery, Trigger.MANUAL)

    async def _attempt_now(
        self, delivery: Delivery, trigger: Trigger
    ) -> tuple[DeliveryLog, Attempt | None]:
        attempt = await self.deliverer.attempt(delivery, trigger)
        stored = await self.store.get_delivery(delivery.id) or delivery
        attempts = await self.store.attempts_of([delivery.id])
        return DeliveryLog(stored, list(attempts.get(delivery.id, []))), attempt

    def _test_delivery(self, webhook: Webhook) -> Delivery:
        now = self.clock.now()
        event_id = "evt_test_" + self.tokens.new_token()
        payload = webhook_envelope(
            webhook,
            event_id=event_id,
            event_type=TEST_EVENT_TYPE,
            at=now,
            message="a test delivery from runplane",
        )
        return Delivery(
            id="dlv_" + self.tokens.new_token(),
            webhook_id=webhook.id,
            event_id=event_id,
            event_type=TEST_EVENT_TYPE,
            runtime_id="",
            payload=payload,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=None,
            created_at=now,
            updated_at=now,
        )
