"""A dict-backed driver with the process driver's semantics and no processes,
for unit tests and benchmarks. Tests steer it with `vanish`, `exit`,
`ignore_stop_signal` and `fail_next`, and assert on what `inspect` then says.
The driver contract (tests/contract/test_driver.py) holds it to the real ones."""

from __future__ import annotations

import asyncio
import copy
import signal
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runplane.domain.driver_specs import DEFAULT_STOP_TIMEOUT_S
from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, DriverError, InvalidSpec
from runplane.domain.placement import placement_of
from runplane.domain.runtime_output import LogChunk, LogQuery, MetricsWindow

OPERATIONS = frozenset(
    {"start", "stop", "pause", "resume", "remove", "inspect", "list_containers", "logs", "metrics"}
)
_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)


@dataclass(frozen=True, slots=True)
class MemoryContainer:
    runtime_id: str
    spec: dict[str, Any]
    info: ContainerInfo
    ignores_stop: bool = False
    """Its process ignores its stop signal: a stop waits out its timeout, then kills."""


@dataclass(slots=True)
class _Engine:
    """What outlives a driver: its containers, and how many were ever started."""

    containers: dict[str, MemoryContainer] = field(default_factory=dict)
    started: int = 0


class InMemoryDriver:
    """Container ids are `m-1`, `m-2`, ... in start order.

    `latency_s` makes every call take that long (benchmarks, races); even at 0
    each call yields to the event loop once, as a real driver would.
    `validator` replaces the default spec check, which accepts any object that
    names a `command` or an `image` and checks only the fields it knows
    (`command`, `port`, `stop_timeout_s`, `health`, `restart_policy`,
    `placement`)."""

    def __init__(
        self,
        *,
        name: str = "memory",
        latency_s: float = 0.0,
        validator: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.latency_s = latency_s
        self._validator = validator or _validate_loosely
        self._engine = _Engine()
        self._containers = self._engine.containers
        self._failures: dict[str, deque[Exception]] = {op: deque() for op in OPERATIONS}
        self.calls: Counter[str] = Counter()
        """Calls that reached the driver, per operation, failed ones included."""

    # -- the Driver protocol --------------------------------------------------

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._validator(spec)

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        await self._enter("start")
        normalised = self.validate_spec(spec)
        self._started += 1
        container_id = f"m-{self._started}"
        info = ContainerInfo(container_id, ContainerState.RUNNING)
        self._containers[container_id] = MemoryContainer(runtime_id, normalised, info)
        port = normalised.get("port")
        return StartedContainer(container_id, f"127.0.0.1:{port}" if port is not None else None)

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        await self._enter("stop")
        container = self._live(container_id)
        sig = _stop_signal(container.spec)
        if container.ignores_stop:
            grace = container.spec.get("stop_timeout_s", DEFAULT_STOP_TIMEOUT_S)
            await asyncio.sleep(grace if timeout_s is None else timeout_s)
            container, sig = self._live(container_id), signal.SIGKILL
        # Like a process killed by its stop signal: code 128 + N.
        info = ContainerInfo(
            container_id, ContainerState.EXITED, 128 + sig, sig, f"killed by {sig.name}"
        )
        self._containers[container_id] = replace(container, info=info)
        return info

    async def pause(self, container_id: str) -> None:
        await self._enter("pause")
        self._set_state(self._live(container_id), ContainerState.PAUSED)

    async def resume(self, container_id: str) -> None:
        await self._enter("resume")
        self._set_state(self._live(container_id), ContainerState.RUNNING)

    async def remove(self, container_id: str) -> None:
        await self._enter("remove")
        self._containers.pop(container_id, None)

    async def inspect(self, container_id: str) -> ContainerInfo:
        await self._enter("inspect")
        container = self._containers.get(container_id)
        if container is None:
            return ContainerInfo(container_id, ContainerState.MISSING, detail="no such container")
        return container.info

    async def list_containers(self) -> list[ContainerInfo]:
        """Each with the runtime it was started for, as the process driver lists them."""
        await self._enter("list_containers")
        return [replace(c.info, runtime_id=c.runtime_id) for c in self._containers.values()]

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        """Its containers write nothing: an empty read."""
        await self._enter("logs")
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerGone(container_id)
        running = container.info.state in (ContainerState.RUNNING, ContainerState.PAUSED)
        return LogChunk([], query.cursor or "0", running)

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        await self._enter("metrics")
        if container_id not in self._containers:
            raise ContainerGone(container_id)
        return MetricsWindow([])

    # -- helpers for tests ----------------------------------------------------

    def fail_next(self, op: str, error: Exception | None = None) -> None:
        """Make the next call of `op` raise `error` (a DriverError by default).
        Calls queue up: two `fail_next("stop")` fail the next two stops."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown driver operation {op!r}; one of {sorted(OPERATIONS)}")
        self._failures[op].append(error or DriverError(f"injected {op} failure"))

    def restarted(self) -> InMemoryDriver:
        """A new driver over the same containers, as after a runplane restart: it
        lists, stops and removes what this one started (`calls` and `fail_next`
        are its own)."""
        fresh = type(self)(name=self.name, latency_s=self.latency_s, validator=self._validator)
        fresh._engine = self._engine
        fresh._containers = self._engine.containers
        return fresh

    def ignore_stop_signal(self, container_id: str) -> None:
        """The container's process ignores its stop signal: `stop` waits out the
        timeout (the call's, else the spec's `stop_timeout_s`), then kills it."""
        container = self._live(container_id)
        self._containers[container_id] = replace(container, ignores_stop=True)

    def vanish(self, container_id: str) -> None:
        """The container disappears behind the driver's back (inspect: MISSING)."""
        self._containers.pop(container_id, None)

    def exit(self, container_id: str, exit_code: int = 0, signal_number: int | None = None) -> None:
        """The container's process ends by itself (inspect: EXITED)."""
        container = self._live(container_id)
        detail = f"exited with code {exit_code}"
        if signal_number is not None:
            detail = f"killed by signal {signal_number}"
        info = ContainerInfo(container_id, ContainerState.EXITED, exit_code, signal_number, detail)
        self._containers[container_id] = replace(container, info=info)

    def container(self, container_id: str) -> MemoryContainer | None:
        """What the driver holds for `container_id`: runtime id, spec, state."""
        return self._containers.get(container_id)

    @property
    def containers(self) -> dict[str, MemoryContainer]:
        return dict(self._containers)

    @property
    def started(self) -> int:
        """How many containers were ever started."""
        return self._engine.started

    @property
    def _started(self) -> int:
        return self._engine.started

    @_started.setter
    def _started(self, value: int) -> None:
        self._engine.started = value

    # -- internals ------------------------------------------------------------

    async def _enter(self, op: str) -> None:
        self.calls[op] += 1
        await asyncio.sleep(self.latency_s)
        if self._failures[op]:
            raise self._failures[op].popleft()

    def _live(self, container_id: str) -> MemoryContainer:
        container = self._containers.get(container_id)
        if container is None or container.info.state not in _LIVE:
            raise ContainerGone(container_id)
        return container

    def _set_state(self, container: MemoryContainer, state: ContainerState) -> None:
        info = replace(container.info, state=state)
        self._containers[info.container_id] = replace(container, info=info)


def _stop_signal(spec: dict[str, Any]) -> signal.Signals:
    name = spec.get("stop_signal")
    if isinstance(name, str) and name.upper() in signal.Signals.__members__:
        return signal.Signals[name.upper()]
    return signal.SIGTERM


def _validate_loosely(spec: dict[str, Any]) -> dict[str, Any]:
    """Any object that names what runs (a `command`, as for the process driver, or
    an `image`, as for docker), with the fields the process driver knows checked
    for shape."""
    if not isinstance(spec, dict):
        raise InvalidSpec("spec must be an object")
    if spec.get("command") is None and spec.get("image") is None:
        raise InvalidSpec("spec must name what runs: a command or an image")
    command = spec.get("command")
    if command is not None and (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) for part in command)
    ):
        raise InvalidSpec("command must be a non-empty list of strings")
    port = spec.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        raise InvalidSpec("port must be an integer from 1 to 65535")
    timeout = spec.get("stop_timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
    ):
        raise InvalidSpec("stop_timeout_s must be a non-negative number")
    for name in ("health", "restart_policy"):
        if spec.get(name) is not None and not isinstance(spec[name], dict):
            raise InvalidSpec(f"{name} must be an object")
    placement_of(spec)  # as every real driver checks it
    return copy.deepcopy(spec)
