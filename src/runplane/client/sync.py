"""The synchronous client: `Client`. AsyncClient (client/aio.py) has the same
methods as coroutines; both send the calls of client/_calls.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse

from runplane.client import _calls, _stream
from runplane.client._calls import Call
from runplane.client.aio import AsyncClient
from runplane.client.errors import ConnectionFailed
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
Spec = Mapping[str, Any]


class Client:
    """runplane's REST API. `base_url` and `api_key` default to RUNPLANE_URL
    and RUNPLANE_API_KEY. Every mutating call carries an Idempotency-Key (a
    uuid4 unless you pass `idempotency_key`); reads and the calls the server
    deduplicates by that key are retried `retries` times on a 503 or when no
    answer came. Failures raise runplane.client.errors.RunplaneError subclasses."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = _calls.DEFAULT_TIMEOUT_S,
        retries: int = _calls.DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers = _calls.settings(base_url, api_key)
        self.retries = retries
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Runtimes

    def create_runtime(
        self,
        spec: Spec,
        *,
        runtime_id: str | None = None,
        team_id: str | None = None,
        driver: str | None = None,
        start: bool = True,
        idempotency_key: str | None = None,
    ) -> Runtime:
        """201 a new runtime; a repeated key answers the first one (`.replayed`)."""
        call = _calls.create_runtime(spec, runtime_id, team_id, driver, start, idempotency_key)
        return self._send(call)

    def get_runtime(self, runtime_id: str) -> Runtime:
        return self._send(_calls.get_runtime(runtime_id))

    def list_runtimes(
        self,
        *,
        status: str | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        return self._send(_calls.list_runtimes(status, team_id, host_id, cursor, limit))

    def start(
        self, runtime_id: str, *, spec: Spec | None = None, idempotency_key: str | None = None
    ) -> OperationResult:
        return self._send(_calls.operate("start", runtime_id, idempotency_key, spec=spec))

    def stop(
        self, runtime_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> OperationResult:
        return self._send(_calls.operate("stop", runtime_id, idempotency_key, reason=reason))

    def restart(self, runtime_id: str, *, idempotency_key: str | None = None) -> OperationResult:
        return self._send(_calls.operate("restart", runtime_id, idempotency_key))

    def patch(
        self, runtime_id: str, spec: Spec, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return self._send(_calls.operate("patch", runtime_id, idempotency_key, spec=spec))

    def pause(self, runtime_id: str, *, idempotency_key: str | None = None) -> OperationResult:
        return self._send(_calls.operate("pause", runtime_id, idempotency_key))

    def resume(self, runtime_id: str, *, idempotency_key: str | None = None) -> OperationResult:
        return self._send(_calls.operate("resume", runtime_id, idempotency_key))

    def remove(self, runtime_id: str, *, idempotency_key: str | None = None) -> OperationResult:
        return self._send(_calls.remove_runtime(runtime_id, idempotency_key))

    def list_operations(self, runtime_id: str, *, limit: int = 100) -> list[OperationEntry]:
        """The runtime's operation log, newest first."""
        return self._send(_calls.list_operations(runtime_id, limit))

    def get_operation(self, operation_id: str) -> OperationEntry:
        return self._send(_calls.get_operation(operation_id))

    # Events

    def list_events(
        self,
        *,
        types: Iterable[str] | None = None,
        runtime_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        """Durable events, oldest first; pass `next_cursor` as `after` for more."""
        return self._send(_calls.list_events(types, runtime_id, after, limit))

    def events(
        self,
        *,
        types: Iterable[str] | None = None,
        runtime_id: str | None = None,
        last_event_id: str | None = None,
        reconnect_for: float | None = _stream.DEFAULT_RECONNECT_FOR_S,
    ) -> Iterator[Event]:
        """Every new event (or every one after `last_event_id`), for ever. It
        reconnects with Last-Event-ID after a dropped connection or a lagging
        cut, losing and repeating nothing; it raises ConnectionFailed (or the
        last error) once reconnecting has failed for `reconnect_for` seconds
        (None: never), and EventsResync if the events it needs were trimmed."""
        follower = _stream.Follower(types, runtime_id, last_event_id, reconnect_for)
        while True:
            try:
                yield from self._follow(follower)
                delay = follower.failed(ConnectionFailed("the event stream ended"))
            except _stream.Cut:
                delay = 0.0
            except _stream.RECONNECTED_ERRORS as exc:
                delay = follower.failed(exc)
            time.sleep(delay)

    def _follow(self, follower: _stream.Follower) -> Iterator[Event]:
        timeout = _stream.stream_timeout(self._timeout)
        with connect_sse(
            self._http, "GET", _stream.PATH, timeout=timeout, **follower.request()
        ) as source:
            if source.response.status_code != 200:
                source.response.read()
            follower.opened(source.response)
            for sse in source.iter_sse():
                if (event := follower.event(sse)) is not None:
                    yield event

    # Waiting

    def wait_for(
        self,
        runtime_id: str,
        status: str | Iterable[str],
        *,
        timeout: float = 60.0,
        poll: bool = False,
    ) -> Runtime:
        """The runtime once it is in `status` (one, a list, or "a,b"); raises
        WaitTimeout after `timeout` seconds. Driven by the event stream, with
        the server's long poll as the fallback (client/_waiting.py); `poll`
        skips the stream."""

        # One implementation, AsyncClient's, on a loop of its own: a blocking
        # read of the stream could not be cut at the deadline (keepalives keep
        # it alive), a cancelled coroutine is, and closes its stream at once.
        async def wait() -> Runtime:
            async with self._async_twin() as twin:
                return await twin.wait_for(runtime_id, status, timeout=timeout, poll=poll)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(wait())
        with ThreadPoolExecutor(1) as worker:  # called from inside an event loop
            return worker.submit(asyncio.run, wait()).result()

    def _async_twin(self) -> AsyncClient:
        twin = AsyncClient(str(self._http.base_url), "", timeout=self._timeout)
        twin.retries = self.retries
        twin._http.headers.update(self._http.headers)
        return twin

    # Webhooks

    def create_webhook(
        self,
        url: str,
        *,
        event_types: Iterable[str] | None = None,
        enabled: bool = True,
        team_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Webhook:
        """The new webhook with its signing `secret`: the only time it is shown."""
        call = _calls.create_webhook(url, event_types, enabled, team_id, idempotency_key)
        return self._send(call)

    def list_webhooks(self) -> list[Webhook]:
        return self._send(_calls.list_webhooks())

    def delete_webhook(self, webhook_id: str, *, idempotency_key: str | None = None) -> None:
        self._send(_calls.delete_webhook(webhook_id, idempotency_key))

    def test_webhook(self, webhook_id: str, *, idempotency_key: str | None = None) -> AttemptResult:
        """Send a `runplane.webhook.test` event to the webhook now."""
        return self._send(_calls.test_webhook(webhook_id, idempotency_key))

    def _send(self, call: Call[T], timeout: float | None = None) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                    timeout=timeout if timeout is not None else self._timeout,
                )
            except _calls.RETRIED_ERRORS as exc:
                if not (call.retry and attempt < self.retries):
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            if response is not None and not (call.retry and attempt < self.retries):
                return call.read(response)
            delay = _calls.retry_delay(attempt, response)
            if delay is None and response is not None:
                return call.read(response)
            time.sleep(delay or 0.0)
            attempt += 1
