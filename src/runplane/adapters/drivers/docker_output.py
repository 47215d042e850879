"""The docker driver's `logs` and `metrics` (mixed into `DockerDriver`): the
engine keeps a container's output (its log driver, capped by the LogConfig
runplane sets), read through its logs API; its stats API gives CPU time and
memory, sampled on this host while someone watches.

A log cursor is `<ns>:<n>`: the engine time of the last line returned and how
many lines of that instant were returned. The engine's `since` is coarse
(Podman's log times are whole seconds), so a read asks from a second earlier
and skips what the cursor says was returned. A line written in the same whole
second as a follow's first read may be missed on such an engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import aiodocker

from runplane.adapters.drivers.docker_engine import engine_errors
from runplane.adapters.drivers.docker_spec import INSTANCE_LABEL, RUNTIME_ID_LABEL
from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.adapters.drivers.resource_history import Reading, ResourceHistory
from runplane.adapters.drivers.runtime_series import exporter
from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import ContainerGone
from runplane.domain.runtime_output import (
    MAX_LINE_BYTES,
    BadOutputQuery,
    LogChunk,
    LogLine,
    LogQuery,
    MetricsWindow,
)

_STREAMS = {1: "stdout", 2: "stderr"}
_STATS_AT_ONCE = 8


class _Engine(Protocol):
    """What of the driver this reads through."""

    instance: str
    url: str

    @property
    def client(self) -> aiodocker.Docker: ...

    async def inspect(self, container_id: str) -> ContainerInfo: ...


class DockerOutput:
    def __init__(self, driver: _Engine, settings: OutputSettings) -> None:
        self._driver = driver
        self._output = settings
        self._history: ResourceHistory | None = None

    def _engine(
        self, op: str, container_id: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return engine_errors(self._driver.url, op, container_id)

    def log_config(self) -> dict[str, Any] | None:
        """The LogConfig of a container runplane creates: json-file, capped and
        rotated (Podman keeps one file, truncated at the size)."""
        settings = self._output
        config = {"max-size": str(settings.log_max_bytes), "max-file": str(settings.log_files)}
        return {"Type": "json-file", "Config": config}

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        state = (await self._driver.inspect(container_id)).state
        if state is ContainerState.MISSING:
            raise ContainerGone(container_id)
        running = state in (ContainerState.RUNNING, ContainerState.PAUSED)
        params = {"stdout": "1", "stderr": "1", "timestamps": "1"}
        after: tuple[int, int] | None = None
        if query.cursor is not None:
            after = _parse_cursor(query.cursor)
            params["since"] = str(max(after[0] // 1_000_000_000 - 1, 0))
        else:
            if query.tail is not None:
                params["tail"] = str(query.tail)
            if query.since is not None:
                params["since"] = str(max(int(query.since), 0))
        lines: list[tuple[int, LogLine]] = []
        skipped = 0
        async for stamp, line in self._read(container_id, params):
            if after is not None:
                if stamp < after[0] or (stamp == after[0] and skipped < after[1]):
                    skipped += stamp == after[0]
                    continue
            elif query.since is not None and line.ts < query.since:
                continue
            lines.append((stamp, line))
            if len(lines) >= query.max_lines:
                break
        cursor = await self._cursor(container_id, query, lines)
        full = len(lines) >= query.max_lines
        return LogChunk([line for _, line in lines], cursor, running, more=full)

    async def _cursor(
        self, container_id: str, query: LogQuery, lines: list[tuple[int, LogLine]]
    ) -> str:
        if not lines:
            return query.cursor or f"{time.time_ns()}:0"
        last = lines[-1][0]
        if query.cursor is not None:
            before = _parse_cursor(query.cursor)
            seen = sum(1 for stamp, _ in lines if stamp == last)
            return f"{last}:{seen + (before[1] if before[0] == last else 0)}"
        # A first read (tail, since) did not see every earlier line of that
        # instant: count them, so the next read skips them all.
        params = {"stdout": "1", "stderr": "1", "timestamps": "1"}
        params["since"] = str(max(last // 1_000_000_000 - 1, 0))
        seen = 0
        async for stamp, _ in self._read(container_id, params):
            if stamp > last:
                break
            seen += stamp == last
        return f"{last}:{max(seen, 1)}"

    async def _read(
        self, container_id: str, params: dict[str, str]
    ) -> AsyncIterator[tuple[int, LogLine]]:
        async with (
            self._engine("logs", container_id),
            self._driver.client._query(
                f"containers/{container_id}/logs", params=params
            ) as response,
        ):
            content = response.content
            while True:
                try:
                    header = await content.readexactly(8)
                except asyncio.IncompleteReadError:
                    return
                size = int.from_bytes(header[4:8], "big")
                payload = await content.readexactly(size)
                parsed = _line(_STREAMS.get(header[0], "stdout"), payload)
                if parsed is not None:
                    yield parsed

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        if (await self._driver.inspect(container_id)).state is ContainerState.MISSING:
            raise ContainerGone(container_id)
        return await self.resource_history().window(container_id, window_s)

    async def aclose(self) -> None:
        if self._history is not None:
            await self._history.aclose()

    def resource_history(self) -> ResourceHistory:
        if self._history is None:
            settings = self._output
            self._history = ResourceHistory(
                self._read_resources,
                interval_s=settings.metrics_interval_s,
                watch_s=settings.metrics_watch_s,
                everything=self._running_containers if settings.metrics_per_runtime else None,
                export=exporter("docker") if settings.metrics_per_runtime else None,
            )
        return self._history

    async def _read_resources(self, container_ids: Sequence[str]) -> dict[str, Reading | None]:
        slots = asyncio.Semaphore(_STATS_AT_ONCE)

        async def one(container_id: str) -> Reading | None:
            async with slots:
                return await self._stats(container_id)

        found = await asyncio.gather(*(one(cid) for cid in container_ids))
        return dict(zip(container_ids, found, strict=True))

    async def _stats(self, container_id: str) -> Reading | None:
        params = {"stream": "false", "one-shot": "true"}
        try:
            async with self._engine("stats", container_id):
                path = f"containers/{container_id}/stats"
                async with self._driver.client._query(path, params=params) as response:
                    body = await response.read()
        except ContainerGone:
            return None
        try:
            stats = json.loads(body)
        except ValueError:
            # Podman answers an empty body for a container on its way out: no
            # reading this round, as for one gone, not a failed round for all.
            return None
        return _reading(stats) if isinstance(stats, dict) else None

    async def _running_containers(self) -> dict[str, str]:
        query = {"label": [f"{INSTANCE_LABEL}={self._driver.instance}"], "status": ["running"]}
        async with self._engine("list"):
            listed = await self._driver.client.containers.list(filters=json.dumps(query))
        names = {c.id: (c._container.get("Labels") or {}).get(RUNTIME_ID_LABEL) for c in listed}
        return {cid: name for cid, name in names.items() if isinstance(name, str)}


def _reading(stats: dict[str, Any]) -> Reading | None:
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    if "total_usage" not in cpu or not stats.get("pids_stats", {}).get("current"):
        return None  # an engine reports an ended container with empty stats
    # As `docker stats`: the page cache the kernel can drop does not count.
    extra = memory.get("stats") or {}
    inactive = extra.get("inactive_file", extra.get("total_inactive_file", 0))
    used = max(int(memory.get("usage", 0)) - int(inactive), 0)
    processes = (stats.get("pids_stats") or {}).get("current")
    return Reading(int(cpu["total_usage"]) / 1e9, used, None, processes)


def _parse_cursor(cursor: str) -> tuple[int, int]:
    stamp, _, seen = cursor.partition(":")
    if not (stamp.isdigit() and seen.isdigit() and len(cursor) <= 64):
        raise BadOutputQuery("not a cursor of this container's logs")
    return int(stamp), int(seen)


def _line(stream: str, payload: bytes) -> tuple[int, LogLine] | None:
    """A frame's `<RFC 3339 time> <text>`: (its time in ns, the line)."""
    stamp, _, text = payload.partition(b" ")
    ns = _nanoseconds(stamp.decode("ascii", "replace"))
    if ns is None:
        return None
    text = text[:-1] if text.endswith(b"\n") else text
    return ns, LogLine(ns / 1e9, stream, text[:MAX_LINE_BYTES].decode("utf-8", "replace"))


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def _nanoseconds(stamp: str) -> int | None:
    """RFC 3339 with up to nanoseconds (datetime stops at microseconds)."""
    match = _STAMP.match(stamp)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
