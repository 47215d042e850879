"""The asynchronous client: `AsyncClient`, the same methods as `Client`
(client/sync.py) as coroutines, and `events()` as an async iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from typing import Any, TypeVar

import httpx
from httpx_sse import aconnect_sse

from runplane.client import _calls, _stream
from runplane.client._calls import Call
from runplane.client._waiting import FALL_BACK_ON, HTTP_SLACK_S, Wait
from runplane.client.errors import ConnectionFailed, RateLimited, WaitTimeout
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


class AsyncClient:
    """runplane's REST API for asyncio; see Client for the behaviour."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = _calls.DEFAULT_TIMEOUT_S,
        retries: int = _calls.DEFAULT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers = _calls.settings(base_url, api_key)
        self.retries = retries
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # Runtimes

    async def create_runtime(
        self,
        spec: Spec,
        *,
        runtime_id: str | None = None,
        team_id: str | None = None,
        driver: str | None = None,
        start: bool = True,
        idempotency_key: str | None = None,
    ) -> Runtime:
        call = _calls.create_runtime(spec, runtime_id, team_id, driver, start, idempotency_key)
        return await self._send(call)

    async def get_runtime(self, runtime_id: str) -> Runtime:
        return await self._send(_calls.get_runtime(runtime_id))

    async def list_runtimes(
        self,
        *,
        status: str | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        return await self._send(_calls.list_runtimes(status, team_id, host_id, cursor, limit))

    async def start(
        self, runtime_id: str, *, spec: Spec | None = None, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("start", runtime_id, idempotency_key, spec=spec))

    async def stop(
        self, runtime_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("stop", runtime_id, idempotency_key, reason=reason))

    async def restart(
        self, runtime_id: str, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("restart", runtime_id, idempotency_key))

    async def patch(
        self, runtime_id: str, spec: Spec, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("patch", runtime_id, idempotency_key, spec=spec))

    async def pause(
        self, runtime_id: str, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("pause", runtime_id, idempotency_key))

    async def resume(
        self, runtime_id: str, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.operate("resume", runtime_id, idempotency_key))

    async def remove(
        self, runtime_id: str, *, idempotency_key: str | None = None
    ) -> OperationResult:
        return await self._send(_calls.remove_runtime(runtime_id, idempotency_key))

    async def list_operations(self, runtime_id: str, *, limit: int = 100) -> list[OperationEntry]:
        return await self._send(_calls.list_operations(runtime_id, limit))

    async def get_operation(self, operation_id: str) -> OperationEntry:
        return await self._send(_calls.get_operation(operation_id))

    # Events

    async def list_events(
        self,
        *,
        types: Iterable[str] | None = None,
        runtime_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        return await self._send(_calls.list_events(types, runtime_id, after, limit))

    async def events(
        self,
        *,
        types: Iterable[str] | None = None,
        runtime_id: str | None = None,
        last_event_id: str | None = None,
        reconnect_for: float | None = _stream.DEFAULT_RECONNECT_FOR_S,
    ) -> AsyncIterator[Event]:
        """As Client.events, as an async iterator."""
        follower = _stream.Follower(types, runtime_id, last_event_id, reconnect_for)
        while True:
            try:
                async with aclosing(self._follow(follower)) as events:
                    async for event in events:
                        yield event
                delay = follower.failed(ConnectionFailed("the event stream ended"))
            except _stream.Cut:
                delay = 0.0
            except _stream.RECONNECTED_ERRORS as exc:
                delay = follower.failed(exc)
            await asyncio.sleep(delay)

    async def _follow(self, follower: _stream.Follower) -> AsyncGenerator[Event, None]:
        timeout = _stream.stream_timeout(self._timeout)
        async with aconnect_sse(
            self._http, "GET", _stream.PATH, timeout=timeout, **follower.request()
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
            follower.opened(source.response)
            async for sse in source.aiter_sse():
                if (event := follower.event(sse)) is not None:
                    yield event

    # Waiting

    async def wait_for(
        self,
        runtime_id: str,
        status: str | Iterable[str],
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - seconds, as in Client.wait_for
        poll: bool = False,
    ) -> Runtime:
        """As Client.wait_for."""
        wait = Wait(runtime_id, _calls.wanted_statuses(status), timeout, poll)
        if wait.by_events():
            try:
                return await self._wait_by_events(wait)
            except FALL_BACK_ON:
                pass  # the long poll below does the rest of the wait
        return await self._wait_by_polling(wait)

    async def _wait_by_events(self, wait: Wait) -> Runtime:
        follower = _stream.Follower(None, wait.runtime_id, None, None)
        timeout = _stream.stream_timeout(self._timeout)
        try:
            async with asyncio.timeout(max(0.0, wait.remaining())):
                async with aconnect_sse(
                    self._http, "GET", _stream.PATH, timeout=timeout, **follower.request()
                ) as source:
                    if source.response.status_code != 200:
                        await source.response.aread()
                    follower.opened(source.response)
                    runtime = await self.get_runtime(wait.runtime_id)
                    if runtime.status in wait.wanted:
                        return runtime
                    async for sse in source.aiter_sse():
                        if wait.reached(follower.event(sse)):
                            return await self.get_runtime(wait.runtime_id)
        except TimeoutError:
            pass  # the deadline: one last look below
        runtime = await self.get_runtime(wait.runtime_id)
        if runtime.status in wait.wanted:
            return runtime
        if wait.remaining() > 0:  # the stream ended early (a server shutting down)
            raise ConnectionFailed("the event stream ended")
        raise wait.timed_out(runtime)

    async def _wait_by_polling(self, wait: Wait) -> Runtime:
        while (chunk := wait.chunk()) > 0:
            call = _calls.wait(wait.runtime_id, wait.wanted, chunk)
            try:
                return await self._send(call, http_timeout=chunk + HTTP_SLACK_S)
            except WaitTimeout:
                continue
            except RateLimited:
                return await self._wait_by_reads(wait)
        runtime = await self.get_runtime(wait.runtime_id)
        if runtime.status in wait.wanted:
            return runtime
        raise wait.timed_out(runtime)

    async def _wait_by_reads(self, wait: Wait) -> Runtime:
        reads = 0
        while True:
            runtime = await self.get_runtime(wait.runtime_id)
            if runtime.status in wait.wanted:
                return runtime
            if wait.remaining() <= 0:
                raise wait.timed_out(runtime)
            await asyncio.sleep(wait.read_delay(reads))
            reads += 1

    # Webhooks

    async def create_webhook(
        self,
        url: str,
        *,
        event_types: Iterable[str] | None = None,
        enabled: bool = True,
        team_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Webhook:
        call = _calls.create_webhook(url, event_types, enabled, team_id, idempotency_key)
        return await self._send(call)

    async def list_webhooks(self) -> list[Webhook]:
        return await self._send(_calls.list_webhooks())

    async def delete_webhook(self, webhook_id: str, *, idempotency_key: str | None = None) -> None:
        await self._send(_calls.delete_webhook(webhook_id, idempotency_key))

    async def test_webhook(
        self, webhook_id: str, *, idempotency_key: str | None = None
    ) -> AttemptResult:
        return await self._send(_calls.test_webhook(webhook_id, idempotency_key))

    async def _send(self, call: Call[T], http_timeout: float | None = None) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                    timeout=http_timeout if http_timeout is not None else self._timeout,
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
            await asyncio.sleep(delay or 0.0)
            attempt += 1
