"""Per-runtime resource samples kept on the runtime's host: a bounded recent
history per container, filled every `interval_s` by a driver's sampler, for
the containers someone asked about in the last `watch_s` (or every container,
when `everything` is given: per-runtime Prometheus series). Nobody asking costs
nothing: the loop runs only while something is watched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from runplane.domain.runtime_output import MAX_WINDOW_S, MetricsWindow, ResourceSample

logger = logging.getLogger(__name__)

FIRST_GAP_S = 0.5
"""A first look takes two readings this far apart: CPU % is a rate."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Counters at one instant: CPU is cumulative, the rest is current."""

    cpu_s: float
    memory_bytes: int
    disk_bytes: int | None = None
    processes: int | None = None


Sampler = Callable[[Sequence[str]], Awaitable[dict[str, Reading | None]]]
"""Readings of the given containers; None for one that is not running."""
Listing = Callable[[], Awaitable[dict[str, str]]]
"""Every running container, with the runtime it runs."""
Exporter = Callable[[str, ResourceSample | None], None]
"""Called with a runtime id and each new sample of it (None: it ended)."""


class _Track:
    def __init__(self, keep: int) -> None:
        self.samples: deque[ResourceSample] = deque(maxlen=keep)
        self.last: tuple[float, Reading] | None = None
        self.watched_until = 0.0
        self.running = True


class ResourceHistory:
    def __init__(
        self,
        sampler: Sampler,
        *,
        interval_s: float = 5.0,
        watch_s: float = 600.0,
        everything: Listing | None = None,
        export: Exporter | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sampler = sampler
        self.interval_s = interval_s
        self._watch_s = watch_s
        self._everything = everything
        self._export = export
        self._now = now
        self._keep = max(1, math.ceil(MAX_WINDOW_S / interval_s))
        self._tracks: dict[str, _Track] = {}
        self._names: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def window(self, container_id: str, window_s: float) -> MetricsWindow:
        """The samples of the last `window_s`; the container is watched from now
        on for `watch_s`. A first call takes a sample at once."""
        track = self._tracks.get(container_id)
        if track is None:
            track = self._tracks[container_id] = _Track(self._keep)
            await self._sample([container_id])
            if track.running:
                await asyncio.sleep(FIRST_GAP_S)
                await self._sample([container_id])
        track.watched_until = self._now() + self._watch_s
        self._ensure_loop()
        since = self._now() - window_s
        samples = [sample for sample in track.samples if sample.ts >= since]
        return MetricsWindow(samples, self.interval_s, track.running)

    def watched(self) -> int:
        return len(self._tracks)

    def start_everything(self) -> None:
        """Sample every container from now on (per-runtime series)."""
        if self._everything is not None:
            self._ensure_loop()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="metrics")

    async def _loop(self) -> None:
        while self._tracks or self._everything is not None:
            await asyncio.sleep(self.interval_s)
            try:
                await self._round()
            except Exception:
                logger.warning("resource sampling failed", exc_info=True)

    async def _round(self) -> None:
        now = self._now()
        for container_id, track in list(self._tracks.items()):
            if track.watched_until and track.watched_until < now and self._everything is None:
                del self._tracks[container_id]
                self._exported(container_id, None)
        ids = set(self._tracks)
        if self._everything is not None:
            listed = await self._everything()
            self._names.update(listed)  # an ended one keeps its name until it is dropped
            ids |= set(listed)
            for container_id in ids - set(self._tracks):
                self._tracks[container_id] = _Track(self._keep)
        await self._sample(sorted(ids))
        self.rounds += 1

    async def _sample(self, container_ids: Sequence[str]) -> None:
        readings = await self._sampler(container_ids)
        now = self._now()
        for container_id in container_ids:
            track = self._tracks.get(container_id)
            if track is None:
                continue
            reading = readings.get(container_id)
            if reading is None:
                track.running = False
                self._exported(container_id, None)
                if self._everything is not None:
                    del self._tracks[container_id]
                    self._names.pop(container_id, None)
                continue
            track.running = True
            if track.last is not None:
                then, before = track.last
                elapsed = max(now - then, 1e-6)
                cpu = max(reading.cpu_s - before.cpu_s, 0.0) / elapsed * 100.0
                sample = ResourceSample(
                    now, round(cpu, 2), reading.memory_bytes, reading.disk_bytes, reading.processes
                )
                track.samples.append(sample)
                self._exported(container_id, sample)
            track.last = (now, reading)

    def _exported(self, container_id: str, sample: ResourceSample | None) -> None:
        runtime_id = self._names.get(container_id)
        if self._export is not None and runtime_id is not None:
            self._export(runtime_id, sample)
