"""runplane's Python client: `Client` (sync) and `AsyncClient` (asyncio) over
the REST API, typed models, errors by stable code, the event stream with
resumption, wait_for, and webhook verification. docs/client.md shows it all.

It imports nothing else of runplane (tests/unit/test_layout.py checks), so it
can be shipped on its own."""

from runplane.client.aio import AsyncClient
from runplane.client.errors import (
    ERRORS_BY_CODE,
    Conflict,
    ConnectionFailed,
    EventsResync,
    Forbidden,
    InternalError,
    InvalidRequest,
    InvalidState,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RunplaneError,
    ServiceUnavailable,
    Unauthorized,
    WaitTimeout,
    WebhookVerificationFailed,
)
from runplane.client.models import (
    AttemptResult,
    Delivery,
    DeliveryAttempt,
    Event,
    EventData,
    EventPage,
    EventType,
    OperationEntry,
    OperationResult,
    Runtime,
    RuntimePage,
    Status,
    Webhook,
)
from runplane.client.sync import Client
from runplane.client.webhooks import verify_webhook

__all__ = [
    "ERRORS_BY_CODE",
    "AsyncClient",
    "AttemptResult",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "EventData",
    "EventPage",
    "EventType",
    "EventsResync",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "InvalidState",
    "MethodNotAllowed",
    "NotFound",
    "OperationEntry",
    "OperationResult",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "RunplaneError",
    "Runtime",
    "RuntimePage",
    "ServiceUnavailable",
    "Status",
    "Unauthorized",
    "WaitTimeout",
    "Webhook",
    "WebhookVerificationFailed",
    "verify_webhook",
]
