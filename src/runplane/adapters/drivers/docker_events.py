"""The docker event watcher: the engine's event stream, filtered by runplane's
labels, turned into the health events of DESIGN §4.

- `die`: `container_exited` with its exit code, or `container_oom` when the
  engine says the kernel killed it for memory (an `oom` event came first, or
  the container's State.OOMKilled) — never for a container runplane itself
  stopped or removed: its end is that operation's outcome, and a SIGKILL after
  a stop timeout is no OOM.
- `destroy` (Podman: `remove`) not done by runplane: `container_disappeared`.
- `health_status` unhealthy: `inspect_unhealthy`; healthy again: `probe_recovered`.

`watch()` is one connection; a worker (workers/engine_events.py) calls it
again after a drop, backing off. A connection after the first asks for events
`since` a few seconds before the last event it handled, skips what it already
handled (by id, action and time), and re-lists the containers: one that was
running and has ended meanwhile, or is gone, is reported as if its events had
been seen. A container's end is reported once, whichever of the two saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runplane.adapters.drivers.docker import DockerDriver
from runplane.adapters.drivers.docker_engine import RecentSet
from runplane.adapters.drivers.docker_spec import RUNTIME_ID_LABEL, container_info
from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import DriverError
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.ports.health import HealthEventPublisher
from runplane.ports.system import Clock

logger = logging.getLogger(__name__)

_E = HealthEventType
_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)
_STATE_OF_ACTION = {
    "start": ContainerState.RUNNING,
    "restart": ContainerState.RUNNING,
    "unpause": ContainerState.RUNNING,
    "pause": ContainerState.PAUSED,
}


@dataclass(frozen=True, slots=True)
class _Known:
    runtime_id: str
    state: ContainerState


class DockerEventWatcher:
    def __init__(
        self,
        driver: DockerDriver,
        publisher: HealthEventPublisher,
        clock: Clock,
        *,
        overlap_s: float = 5.0,
        replay_quiet_s: float = 0.3,
        remembered: int = 4096,
    ) -> None:
        self.driver = driver
        self.publisher = publisher
        self.clock = clock
        self.overlap_s = overlap_s
        self.replay_quiet_s = replay_quiet_s
        self.connected = asyncio.Event()
        """Set while the event stream is up (after the re-list that follows a connect)."""
        self.connections = 0
        self._known: dict[str, _Known] = {}
        self._seen = RecentSet(remembered)
        self._reported = RecentSet(remembered)
        self._oom = RecentSet(remembered)
        self._health: dict[str, str] = {}
        self._last_event_s: float | None = None
        self._connected_at_s: float | None = None

    def __repr__(self) -> str:
        return f"DockerEventWatcher({self.driver.url!r})"

    async def watch(self) -> None:
        """One connection: connect (from shortly before the last event handled,
        after a drop), handle the replayed backlog, re-list, then follow live
        events until the stream ends (returns) or fails (raises)."""
        try:
            await self._session()
        finally:
            self.connected.clear()

    async def _session(self) -> None:
        resume_s = self._resume_from_s()
        async with self.driver.event_stream(since_s=resume_s) as stream:
            self._connected_at_s = self.clock.now().timestamp()
            self.connections += 1
            fields = {"url": self.driver.url, "since_s": resume_s}
            logger.info("docker event stream connected", extra=fields)
            queue: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
            pump = asyncio.ensure_future(_pump(stream, queue))
            try:
                if resume_s is not None:
                    await self._replay(queue)
                await self._relist()
                self.connected.set()
                while (event := await _next(queue)) is not None:
                    await self._handle(event, "event")
            finally:
                pump.cancel()
                # Not `await pump`: its CancelledError would look like the one a
                # cancel of this session raises, and suppressing it would swallow both.
                await asyncio.wait([pump])
        logger.warning("docker event stream ended", extra={"url": self.driver.url})

    async def _replay(self, queue: asyncio.Queue[dict[str, Any] | BaseException | None]) -> None:
        """The engine sends what it kept since `since` at once, then falls quiet:
        handle events until a quiet spell. Cutting it short loses nothing (the
        re-list and the de-duplication agree); it only changes which reports it."""
        while True:
            try:
                event = await asyncio.wait_for(_next(queue), self.replay_quiet_s)
            except TimeoutError:
                return
            if event is None:
                raise DriverError("the docker event stream ended during its replay")
            await self._handle(event, "replay")

    def _resume_from_s(self) -> float | None:
        mark = self._last_event_s if self._last_event_s is not None else self._connected_at_s
        return None if mark is None else mark - self.overlap_s

    async def _relist(self) -> None:
        """Compare what the engine has with what was known before the connection
        dropped; report what ended or vanished meanwhile. What is known changes
        only once its report is out, so a failed publish is found again."""
        listed = {info.container_id: info for info in await self.driver.list_containers()}
        now = self.clock.now()
        for container_id, info in listed.items():
            before = self._known.get(container_id)
            if before is not None and before.state in _LIVE and info.state not in _LIVE:
                await self._ended(before.runtime_id, info, now, "relist")
            if info.runtime_id is not None:
                self._known[container_id] = _Known(info.runtime_id, info.state)
        for container_id in [cid for cid in self._known if cid not in listed]:
            await self._vanished(self._known[container_id].runtime_id, container_id, now, "relist")
            del self._known[container_id]

    # -- events ---------------------------------------------------------------

    async def _handle(self, event: dict[str, Any], source: str) -> None:
        actor = event.get("Actor") or {}
        attributes: dict[str, str] = actor.get("Attributes") or {}
        container_id = str(actor.get("ID") or event.get("id") or "")
        runtime_id = attributes.get(RUNTIME_ID_LABEL)
        action = str(event.get("Action") or event.get("status") or "")
        time_ns = int(event.get("timeNano") or int(event.get("time") or 0) * 1_000_000_000)
        key = (container_id, action, time_ns)
        if not container_id or not runtime_id or key in self._seen:
            return
        at = datetime.fromtimestamp(time_ns / 1e9, UTC)
        if action in _STATE_OF_ACTION:
            self._known[container_id] = _Known(runtime_id, _STATE_OF_ACTION[action])
        elif action == "oom":
            self._oom.add(container_id)
        elif action == "die":
            await self._died(runtime_id, container_id, attributes, at, source)
        elif action in ("destroy", "remove"):
            await self._vanished(runtime_id, container_id, at, source)
            self._known.pop(container_id, None)
            self._health.pop(container_id, None)
        elif action.startswith("health_status"):
            # Docker: "health_status: healthy"; Podman 4: "health_status" with a
            # HealthStatus that may lag, so the container's own state decides.
            status = action.partition(":")[2].strip() or str(event.get("HealthStatus") or "")
            with contextlib.suppress(DriverError):
                status = await self.driver.health_status(container_id) or status
            await self._health_changed(runtime_id, container_id, status, at)
        # Only what was handled is skipped after a reconnect.
        self._seen.add(key)
        self._last_event_s = max(self._last_event_s or 0.0, time_ns / 1e9)

    async def _died(
        self, runtime_id: str, container_id: str, attrs: dict[str, str], at: datetime, source: str
    ) -> None:
        if not self.driver.ended_by_runplane(container_id):
            info: ContainerInfo | None = None
            with contextlib.suppress(DriverError):
                info = await self.driver.inspect(container_id)
            if info is None or info.state is not ContainerState.EXITED:
                info = _info_from_event(container_id, attrs)  # removed already
            await self._ended(runtime_id, info, at, source)
        self._known[container_id] = _Known(runtime_id, ContainerState.EXITED)

    async def _ended(self, runtime_id: str, info: ContainerInfo, at: datetime, source: str) -> None:
        container_id = info.container_id
        if self.driver.ended_by_runplane(container_id) or (container_id, "gone") in self._reported:
            return
        oom = info.oom_killed or container_id in self._oom
        event_type = _E.CONTAINER_OOM if oom else _E.CONTAINER_EXITED
        details = {
            "exit_code": info.exit_code,
            "signal": info.signal,
            "detail": info.detail,
            "source": source,
        }
        await self._report((container_id, "end"), runtime_id, container_id, event_type, at, details)

    async def _vanished(
        self, runtime_id: str, container_id: str, at: datetime, source: str
    ) -> None:
        if self.driver.removed_by_runplane(container_id):
            return
        details = {"detail": "removed from the engine, not by runplane", "source": source}
        event_type = _E.CONTAINER_DISAPPEARED
        await self._report(
            (container_id, "gone"), runtime_id, container_id, event_type, at, details
        )

    async def _health_changed(
        self, runtime_id: str, container_id: str, status: str, at: datetime
    ) -> None:
        types = {"unhealthy": _E.INSPECT_UNHEALTHY, "healthy": _E.PROBE_RECOVERED}
        if status in types and status != self._health.get(container_id):
            details = {"health_status": status, "source": "event"}
            event = HealthEvent(runtime_id, container_id, types[status], at, details)
            await self.publisher.publish(event)
        self._health[container_id] = status

    async def _report(
        self,
        key: tuple[str, str],
        runtime_id: str,
        container_id: str,
        event_type: HealthEventType,
        at: datetime,
        details: dict[str, Any],
    ) -> None:
        """Publish once per key. A publish failure ends the session: the event
        comes again after the reconnect (replayed, or found by the re-list)."""
        if key in self._reported:
            return
        await self.publisher.publish(HealthEvent(runtime_id, container_id, event_type, at, details))
        self._reported.add(key)
        fields = {"runtime_id": runtime_id, "container_id": container_id}
        logger.info("docker health event", extra={**fields, "event_type": str(event_type)})


async def _pump(
    stream: AsyncIterator[dict[str, Any]],
    queue: asyncio.Queue[dict[str, Any] | BaseException | None],
) -> None:
    """Stream -> queue; then None at the end, or the error that broke it."""
    try:
        async for event in stream:
            await queue.put(event)
    except Exception as exc:
        await queue.put(exc)
    else:
        await queue.put(None)


async def _next(
    queue: asyncio.Queue[dict[str, Any] | BaseException | None],
) -> dict[str, Any] | None:
    item = await queue.get()
    if isinstance(item, BaseException):
        raise item
    return item


def _info_from_event(container_id: str, attributes: dict[str, str]) -> ContainerInfo:
    """How a container ended, from its `die` event alone."""
    code = attributes.get("exitCode") or attributes.get("containerExitCode") or ""
    if not code.lstrip("-").isdigit():
        detail = "exited; exit code unknown"
        return ContainerInfo(container_id, ContainerState.EXITED, detail=detail)
    return container_info(container_id, {"State": {"Status": "exited", "ExitCode": int(code)}})
