"""A `Driver` whose calls run on another host, by its agent (docs/hosts.md).

The lifecycle calls it as it calls a local driver. A call that changes
something carries the lease token and record version of `driver_call.current()`
(set where the operation holds the runtime's lease); without them it is refused
here, before anything is sent. No answer within the bound: HostUnreachable (a
DriverError: the operation answers `service_unavailable`), and the call may
still be applied: the next operation on the runtime inspects first."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from runplane.domain.connection_calls import PortsOf, items_to_spec
from runplane.domain.driver_specs import DEFAULT_STOP_TIMEOUT_S
from runplane.domain.drivers import ContainerInfo, StartedContainer
from runplane.domain.errors import DriverError
from runplane.domain.host_calls import (
    CallOp,
    HostCall,
    HostUnreachable,
    answer_value,
    info_from_wire,
    started_from_wire,
)
from runplane.domain.runtime_output import (
    LogChunk,
    LogQuery,
    MetricsWindow,
    chunk_from_wire,
    query_to_wire,
    window_from_wire,
)
from runplane.ports.host_calls import HostCallSender
from runplane.services import driver_call


class RemoteDriver:
    """One driver kind (`name`) on one host (`host_id`), through its agent.
    `validate_spec` runs here, with a local driver of the same kind: it only
    reads the spec."""

    def __init__(
        self,
        name: str,
        host_id: str,
        sender: HostCallSender,
        validate: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        call_timeout_s: float = 30.0,
        margin_s: float = 5.0,
        now: Callable[[], float] = time.time,
        new_call_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.name = name
        self.host_id = host_id
        self._sender = sender
        self._validate = validate
        self._call_timeout_s = call_timeout_s
        self._margin_s = margin_s
        self._now = now
        self._new_call_id = new_call_id

    def __repr__(self) -> str:
        return f"RemoteDriver({self.name!r}, host={self.host_id!r})"

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._validate(spec)

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        value = await self.call(CallOp.START, runtime_id=runtime_id, spec=spec)
        return started_from_wire(value)

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        # The caller waits for the grace, then the kill, then the margin. Without a
        # timeout the spec's stop_timeout_s applies, unknown here: the default is
        # assumed, and a longer grace outlasts the wait (the stop still happens).
        grace = timeout_s if timeout_s is not None else DEFAULT_STOP_TIMEOUT_S
        bound = grace + self._call_timeout_s
        value = await self.call(
            CallOp.STOP, container_id=container_id, timeout_s=timeout_s, wait_s=bound
        )
        return info_from_wire(value)

    async def pause(self, container_id: str) -> None:
        await self.call(CallOp.PAUSE, container_id=container_id)

    async def resume(self, container_id: str) -> None:
        await self.call(CallOp.RESUME, container_id=container_id)

    async def remove(self, container_id: str) -> None:
        await self.call(CallOp.REMOVE, container_id=container_id)

    async def inspect(self, container_id: str) -> ContainerInfo:
        return info_from_wire(await self.call(CallOp.INSPECT, container_id=container_id))

    async def list_containers(self) -> Sequence[ContainerInfo]:
        return [info_from_wire(wire) for wire in await self.call(CallOp.LIST)]

    async def open_connections(self, items: Sequence[PortsOf]) -> list[int | None]:
        """The host's ConnectionCounter, for the idle rule (a read: not fenced)."""
        value = await self.call(CallOp.CONNECTIONS, spec=items_to_spec(items))
        return [c if isinstance(c, int) else None for c in value]

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        # The query rides in the call's spec field: reads carry no spec.
        wire = query_to_wire(query)
        return chunk_from_wire(await self.call(CallOp.LOGS, container_id=container_id, spec=wire))

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        wire = {"window_s": window_s}
        value = await self.call(CallOp.METRICS, container_id=container_id, spec=wire)
        return window_from_wire(value)

    async def call(
        self,
        op: CallOp,
        *,
        runtime_id: str = "",
        container_id: str = "",
        spec: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        wait_s: float | None = None,
        call_id: str | None = None,
    ) -> Any:
        """Send one call and wait for its answer (its value, or the driver error
        it reports). `call_id`: a repeat of an earlier call (tests, retries)."""
        wait_s = self._call_timeout_s if wait_s is None else wait_s
        context = driver_call.current()
        call = HostCall(
            call_id=call_id or self._new_call_id(),
            op=op,
            driver=self.name,
            deadline=self._now() + wait_s,
            runtime_id=runtime_id or _runtime_of(container_id, context),
            container_id=container_id,
            spec=spec or {},
            timeout_s=timeout_s,
            lease_token=context.lease_token if context else "",
            record_version=context.record_version if context else -1,
        )
        if call.fenced and not (context and call.runtime_id == context.runtime_id):
            raise DriverError(f"{op} on host {self.host_id} needs the runtime's lease context")
        await self._sender.send(self.host_id, call)
        raw = await self._sender.wait_answer(self.host_id, call.call_id, wait_s + self._margin_s)
        if raw is None:
            raise HostUnreachable(
                f"host {self.host_id!r}: no answer to {op} within {wait_s + self._margin_s:.0f}s"
            )
        return answer_value(raw, container_id)


def _runtime_of(container_id: str, context: driver_call.DriverCall | None) -> str:
    """Stop, pause, ... name a container, not a runtime; the context names it."""
    return context.runtime_id if context and container_id else ""
