"""Webhooks over REST: `/v1/webhooks` and their deliveries.

A team key manages its team's webhooks; an admin key every webhook, and may
create one for a team or (no team_id) for every team. A webhook outside the
key's reach answers 404, as if absent. The service comes from
the ApiContext's `webhooks`; without one every call answers 503."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from runplane.api.auth import Key, context_of, team_scope
from runplane.api.errors import ApiError
from runplane.api.schemas.runtimes import ErrorBody
from runplane.api.schemas.webhooks import (
    AttemptOut,
    AttemptResultOut,
    CreateWebhookBody,
    DeliveryListOut,
    DeliveryOut,
    UpdateWebhookBody,
    WebhookListOut,
    WebhookOut,
)
from runplane.domain.errors import ErrorCode
from runplane.domain.webhooks.model import Attempt, DeliveryLog, InvalidWebhook, Webhook
from runplane.services.webhooks.management import WebhookChanges, WebhookService

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 500, 503)
}
NO_WEBHOOK = "no such webhook"


def webhooks_of(request: Request) -> WebhookService:
    service = context_of(request).webhooks
    if service is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "webhooks are not configured")
    return service


def _found(webhook: Webhook | None) -> Webhook:
    if webhook is None:
        raise ApiError(ErrorCode.NOT_FOUND, NO_WEBHOOK)
    return webhook


def _attempt_result(outcome: tuple[DeliveryLog, Attempt | None] | None) -> AttemptResultOut:
    if outcome is None:
        raise ApiError(ErrorCode.NOT_FOUND, NO_WEBHOOK)
    log, attempt = outcome
    return AttemptResultOut(
        attempt=AttemptOut.of(attempt) if attempt else None, delivery=DeliveryOut.of(log)
    )


@router.post("", status_code=201, response_model=WebhookOut, responses=ERRORS)
async def create_webhook(body: CreateWebhookBody, request: Request, key: Key) -> WebhookOut:
    """The answer carries the signing secret: the only time it is shown."""
    service = webhooks_of(request)
    if not key.admin and body.team_id not in (None, key.team_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, "a team key creates webhooks for its own team")
    try:
        webhook, secret = await service.create(
            url=body.url,
            team_id=body.team_id if key.admin else key.team_id,
            event_types=body.event_types,
            enabled=body.enabled,
        )
    except InvalidWebhook as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, exc.message) from exc
    return WebhookOut.of(webhook, secret)


@router.get("", response_model=WebhookListOut, responses=ERRORS)
async def list_webhooks(request: Request, key: Key, team_id: str | None = None) -> WebhookListOut:
    """Webhooks by webhook_id (a team key: its own team's), without their secrets."""
    scope = team_scope(key)
    if scope is not None and team_id not in (None, scope):
        return WebhookListOut(webhooks=[])
    found = await webhooks_of(request).list_webhooks(scope, team_id=team_id)
    return WebhookListOut(webhooks=[WebhookOut.of(w) for w in found])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ERRORS)
async def get_webhook(webhook_id: str, request: Request, key: Key) -> WebhookOut:
    """One webhook, with its status and failure streak (never its secret)."""
    webhook = await webhooks_of(request).get(webhook_id, team_scope(key))
    return WebhookOut.of(_found(webhook))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=ERRORS)
async def update_webhook(
    webhook_id: str, body: UpdateWebhookBody, request: Request, key: Key
) -> WebhookOut:
    """Enabling a disabled webhook clears its failure streak and reason."""
    changes = WebhookChanges(
        url=body.url,
        event_types=tuple(body.event_types) if body.event_types is not None else None,
        enabled=body.enabled,
    )
    try:
        webhook = await webhooks_of(request).update(webhook_id, team_scope(key), changes)
    except InvalidWebhook as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, exc.message) from exc
    return WebhookOut.of(_found(webhook))


@router.delete("/{webhook_id}", status_code=204, response_class=Response, responses=ERRORS)
async def delete_webhook(webhook_id: str, request: Request, key: Key) -> Response:
    """The webhook's deliveries go with it."""
    if not await webhooks_of(request).delete(webhook_id, team_scope(key)):
        raise ApiError(ErrorCode.NOT_FOUND, NO_WEBHOOK)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryListOut,
    responses=ERRORS,
    operation_id="list_webhook_deliveries",
)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    key: Key,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryListOut:
    """Newest first, each with its attempts (status code, latency, error)."""
    logs = await webhooks_of(request).deliveries(webhook_id, team_scope(key), limit=limit)
    if logs is None:
        raise ApiError(ErrorCode.NOT_FOUND, NO_WEBHOOK)
    return DeliveryListOut(deliveries=[DeliveryOut.of(log) for log in logs])


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    responses=ERRORS,
    operation_id="get_webhook_delivery",
)
async def get_delivery(
    webhook_id: str, delivery_id: str, request: Request, key: Key
) -> DeliveryOut:
    """One delivery with every attempt (status code, latency, error)."""
    log = await webhooks_of(request).delivery(webhook_id, delivery_id, team_scope(key))
    if log is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such delivery")
    return DeliveryOut.of(log)


@router.post("/{webhook_id}/test", response_model=AttemptResultOut, responses=ERRORS)
async def test_webhook(webhook_id: str, request: Request, key: Key) -> AttemptResultOut:
    """Send a `runplane.webhook.test` event now; it is not retried."""
    outcome = await webhooks_of(request).send_test(webhook_id, team_scope(key))
    return _attempt_result(outcome)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=AttemptResultOut,
    responses=ERRORS,
    operation_id="redeliver_webhook_delivery",
)
async def redeliver(
    webhook_id: str, delivery_id: str, request: Request, key: Key
) -> AttemptResultOut:
    """Attempt a delivery again now, whatever its status, with the same `webhook-id`."""
    outcome = await webhooks_of(request).redeliver(webhook_id, delivery_id, team_scope(key))
    if outcome is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such delivery")
    return _attempt_result(outcome)
