"""Checking a webhook delivery: runplane signs each POST per Standard Webhooks
(docs/webhooks.md), verified here with the same standardwebhooks library."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError
from standardwebhooks import Webhook as Verifier

from runplane.client.errors import WebhookVerificationFailed
from runplane.client.models import Event

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def verify_webhook(secret: str, headers: Headers, body: bytes | str) -> Event:
    """The delivered event, once `body` is shown to be signed with `secret`
    (`whsec_...`, from create_webhook) less than five minutes ago. Pass the raw
    body as received, before any JSON parsing. Raises WebhookVerificationFailed
    for a bad or missing signature, a stale or future timestamp, or a body that
    is not an event. Drop repeats by `event.id` (the `webhook-id` header)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lowered = {str(name).lower(): str(value) for name, value in pairs}
    try:
        verifier = Verifier(secret)
    except Exception as exc:  # not base64, empty: the library raises several kinds
        raise WebhookVerificationFailed(f"the webhook secret is not valid: {exc}") from exc
    try:
        payload = verifier.verify(body, lowered)
    except Exception as exc:  # a malformed signature header raises ValueError, not its error
        raise WebhookVerificationFailed(f"webhook not verified: {exc}") from exc
    try:
        return Event.model_validate(payload)
    except ValidationError as exc:
        raise WebhookVerificationFailed(f"the signed body is not an event: {exc}") from exc
