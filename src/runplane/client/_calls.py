"""What each API call sends and how its answer is read, shared by Client and
AsyncClient: they differ only in how they send (client/sync.py, client/aio.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from runplane.client.errors import error_from
from runplane.client.models import (
    AttemptResult,
    Event,
    EventPage,
    OperationEntry,
    OperationResult,
    Runtime,
    RuntimePage,
    Webhook,
)

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 2
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
MAX_RETRY_AFTER_S = 10.0
OPERATIONS = ("start", "stop", "restart", "patch", "pause", "resume")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = False
    """Safe to send again: a read, or a call the server deduplicates by its
    Idempotency-Key (a retry answers the first result, never a second effect)."""


def idempotency_key(given: str | None) -> str:
    """The key a mutating call carries: the caller's, else a fresh uuid4."""
    return given if given is not None else str(uuid.uuid4())


def settings(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The base URL and auth headers: the arguments, else RUNPLANE_URL and
    RUNPLANE_API_KEY (as the CLI reads them)."""
    url = (base_url or os.environ.get("RUNPLANE_URL") or DEFAULT_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("RUNPLANE_API_KEY")
    return url, ({"Authorization": f"Bearer {key}"} if key else {})


def checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise error_from(response)
    return response


def retry_delay(attempt: int, response: httpx.Response | None) -> float | None:
    """How long to wait before attempt `attempt + 1`, or None not to retry:
    only a 503 or no answer at all is retried (the server's Retry-After first)."""
    if response is not None and response.status_code != 503:
        return None
    if response is not None and (after := response.headers.get("retry-after")):
        try:
            return min(float(after), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    return RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]


RETRIED_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
"""No answer came: refused, reset or closed. Not timeouts: a slow call may
still be running, and a mutation is left to its caller then."""


def _json(response: httpx.Response) -> Any:
    return checked(response).json()


def _runtime(response: httpx.Response) -> Runtime:
    runtime = Runtime.model_validate(_json(response))
    runtime._replayed = response.headers.get("idempotent-replayed") == "true"
    return runtime


def _result(response: httpx.Response) -> OperationResult:
    return OperationResult.model_validate(_json(response))


def _webhook(response: httpx.Response) -> Webhook:
    return Webhook.model_validate(_json(response))


def _nothing(response: httpx.Response) -> None:
    checked(response)


def _mutation(
    method: str, path: str, read: Callable[[httpx.Response], T], key: str | None, body: Any = None
) -> Call[T]:
    return Call(
        method,
        path,
        read,
        body=body,
        headers={"Idempotency-Key": idempotency_key(key)},
        retry=True,
    )


def create_runtime(
    spec: Mapping[str, Any],
    runtime_id: str | None,
    team_id: str | None,
    driver: str | None,
    start: bool,
    key: str | None,
) -> Call[Runtime]:
    body: dict[str, Any] = {"spec": dict(spec), "start": start}
    extra = {"runtime_id": runtime_id, "team_id": team_id, "driver": driver}
    body.update({name: value for name, value in extra.items() if value is not None})
    return _mutation("POST", "/v1/runtimes", _runtime, key, body)


def operate(
    op: str,
    runtime_id: str,
    key: str | None,
    reason: str | None = None,
    spec: Mapping[str, Any] | None = None,
) -> Call[OperationResult]:
    body: dict[str, Any] = {}
    if reason is not None:
        body["reason"] = reason
    if spec is not None:
        body["spec"] = dict(spec)
    return _mutation("POST", f"/v1/runtimes/{_seg(runtime_id)}/{op}", _result, key, body or None)


def remove_runtime(runtime_id: str, key: str | None) -> Call[OperationResult]:
    return _mutation("DELETE", f"/v1/runtimes/{_seg(runtime_id)}", _result, key)


def get_runtime(runtime_id: str) -> Call[Runtime]:
    return Call("GET", f"/v1/runtimes/{_seg(runtime_id)}", _runtime, retry=True)


def list_runtimes(
    status: str | None, team_id: str | None, host_id: str | None, cursor: str | None, limit: int
) -> Call[RuntimePage]:
    params = _params(status=status, team_id=team_id, host_id=host_id, cursor=cursor, limit=limit)
    return Call(
        "GET",
        "/v1/runtimes",
        lambda r: RuntimePage.model_validate(_json(r)),
        params=params,
        retry=True,
    )


def list_operations(runtime_id: str, limit: int) -> Call[list[OperationEntry]]:
    return Call(
        "GET",
        f"/v1/runtimes/{_seg(runtime_id)}/operations",
        lambda r: [OperationEntry.model_validate(e) for e in _json(r)["operations"]],
        params={"limit": limit},
        retry=True,
    )


def get_operation(operation_id: str) -> Call[OperationEntry]:
    return Call(
        "GET",
        f"/v1/operations/{_seg(operation_id)}",
        lambda r: OperationEntry.model_validate(_json(r)),
        retry=True,
    )


def list_events(
    types: Iterable[str] | None, runtime_id: str | None, after: str | None, limit: int
) -> Call[EventPage]:
    params = _params(type=_types(types), runtime_id=runtime_id, after=after, limit=limit)

    def read(response: httpx.Response) -> EventPage:
        body = _json(response)
        events = [
            Event.model_validate({**e["event"], "stream_id": e["id"]}) for e in body["events"]
        ]
        return EventPage(events=events, next_cursor=body.get("next_cursor"))

    return Call("GET", "/v1/events", read, params=params, retry=True)


def wait(runtime_id: str, statuses: Iterable[str], timeout_s: float) -> Call[Runtime]:
    params = {"status": ",".join(statuses), "timeout": f"{timeout_s:.3f}"}
    return Call("GET", f"/v1/runtimes/{_seg(runtime_id)}/wait", _runtime, params=params)


def create_webhook(
    url: str, event_types: Iterable[str] | None, enabled: bool, team_id: str | None, key: str | None
) -> Call[Webhook]:
    body: dict[str, Any] = {"url": url, "event_types": list(event_types or ()), "enabled": enabled}
    if team_id is not None:
        body["team_id"] = team_id
    # The server does not deduplicate webhook calls by their key: never retried.
    return _only_once(_mutation("POST", "/v1/webhooks", _webhook, key, body))


def list_webhooks() -> Call[list[Webhook]]:
    return Call(
        "GET",
        "/v1/webhooks",
        lambda r: [Webhook.model_validate(w) for w in _json(r)["webhooks"]],
        retry=True,
    )


def delete_webhook(webhook_id: str, key: str | None) -> Call[None]:
    return _only_once(_mutation("DELETE", f"/v1/webhooks/{_seg(webhook_id)}", _nothing, key))


def test_webhook(webhook_id: str, key: str | None) -> Call[AttemptResult]:
    return _only_once(_mutation("POST", f"/v1/webhooks/{_seg(webhook_id)}/test", _attempt, key))


def _attempt(response: httpx.Response) -> AttemptResult:
    return AttemptResult.model_validate(_json(response))


def _only_once(call: Call[T]) -> Call[T]:
    return Call(call.method, call.path, call.read, call.params, call.body, call.headers, False)


def _seg(value: str) -> str:
    """One path segment, quoted: an id with `/` or `?` stays one segment."""
    return quote(value, safe=":@-._~")


def _types(types: Iterable[str] | None) -> str | None:
    names = [str(t) for t in types or ()]
    return ",".join(names) or None


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def stream_params(types: Iterable[str] | None, runtime_id: str | None) -> dict[str, Any]:
    return _params(types=_types(types), runtime_id=runtime_id)


def wanted_statuses(status: str | Iterable[str]) -> frozenset[str]:
    names = [status] if isinstance(status, str) else list(status)
    found = frozenset(str(s).strip() for name in names for s in str(name).split(",") if s.strip())
    if not found:
        raise ValueError("wait_for needs at least one status")
    return found
