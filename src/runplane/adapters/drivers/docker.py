"""The `docker` driver: a runtime is a container on a Docker Engine API — Docker
itself or Podman's compatible socket — driven with aiodocker.

The engine holds all state: a container id is the engine's, and every
container carries the labels `runplane.runtime_id` and `runplane.instance`, so
a fresh driver (after a runplane restart) lists and adopts what an earlier one
started. Nothing is ever pulled: a spec's image must already be on the engine,
and a patch recreates the container from the new spec.

The driver remembers which containers it stopped or removed itself, so the
event watcher (`docker_events`) does not take runplane's own doing for a
runtime's failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import aiohttp

from runplane.adapters.drivers.docker_engine import (
    DEFAULT_DOCKER_HOST,
    RecentSet,
    decoded_events,
    engine_errors,
    inspect_started,
    normalise_docker_host,
    reason,
)
from runplane.adapters.drivers.docker_output import DockerOutput
from runplane.adapters.drivers.docker_spec import (
    INSTANCE_LABEL,
    RUNTIME_ID_LABEL,
    container_info,
    create_body,
    endpoint_port,
    validate_docker_spec,
)
from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, DriverError
from runplane.domain.runtime_output import LogChunk, LogQuery, MetricsWindow

logger = logging.getLogger(__name__)


class DockerDriver:
    """Container id: the engine's (64 hex digits). `instance` marks this
    deployment's containers (label `runplane.instance`): several runplanes can
    share one engine without adopting each other's containers."""

    name = "docker"

    def __init__(
        self,
        url: str = DEFAULT_DOCKER_HOST,
        *,
        instance: str,
        publish_host: str = "127.0.0.1",
        connect_timeout_s: float = 10.0,
        remembered_ids: int = 4096,
        output: OutputSettings | None = None,
    ) -> None:
        if not instance:
            raise ValueError("a docker driver needs an instance name")
        self.url = normalise_docker_host(url)
        self.instance = instance
        self.publish_host = publish_host
        self._connect_timeout_s = connect_timeout_s
        self._client: aiodocker.Docker | None = None
        self._ended = RecentSet(remembered_ids)
        self._removed = RecentSet(remembered_ids)
        self.output = DockerOutput(self, output or OutputSettings())

    def __repr__(self) -> str:
        return f"DockerDriver(url={self.url!r}, instance={self.instance!r})"

    @property
    def client(self) -> aiodocker.Docker:
        """The engine client, made on first use (inside the running loop)."""
        if self._client is None:
            timeout = aiohttp.ClientTimeout(
                connect=self._connect_timeout_s, sock_connect=self._connect_timeout_s
            )
            self._client = aiodocker.Docker(url=self.url, timeout=timeout)
        return self._client

    @property
    def labels(self) -> dict[str, str]:
        """The labels that mark this instance's containers (runtime id aside)."""
        return {INSTANCE_LABEL: self.instance}

    async def aclose(self) -> None:
        await self.output.aclose()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def check(self) -> dict[str, Any]:
        """The engine's version; DriverError naming the URL when it cannot be reached."""
        try:
            version: dict[str, Any] = await self.client.version()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DriverError(
                f"cannot reach the container engine at {self.url} ({reason(exc)}); "
                "set RUNPLANE_DOCKER_HOST to its socket (unix:///var/run/docker.sock, "
                "unix:///run/podman/podman.sock) or tcp://host:port"
            ) from exc
        found = {"url": self.url, "version": version.get("Version")}
        logger.info("container engine reachable", extra=found)
        return version

    # -- the Driver protocol --------------------------------------------------

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return validate_docker_spec(spec)

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        normalised = self.validate_spec(spec)
        labels = {**self.labels, RUNTIME_ID_LABEL: runtime_id}
        body = create_body(normalised, labels, self.publish_host)
        body["HostConfig"]["LogConfig"] = self.output.log_config()
        async with self._engine("create", image=normalised["image"]):
            container = await self.client.containers.create(body)
        try:
            async with self._engine("start"):
                await container.start()
            inspected = await inspect_started(container, self.url)
        except DriverError:
            await self._discard(container.id)
            raise
        port = endpoint_port(normalised, inspected)
        endpoint = f"{self.publish_host}:{port}" if port is not None else None
        fields = {"runtime_id": runtime_id, "container_id": container.id}
        logger.info("docker runtime started", extra=fields)
        return StartedContainer(container.id, endpoint)

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        inspected = await self._inspect(container_id)
        info = container_info(container_id, inspected)
        if info.state not in (ContainerState.RUNNING, ContainerState.PAUSED):
            raise ContainerGone(container_id)
        grace = inspected.get("Config", {}).get("StopTimeout")
        if timeout_s is not None:
            grace = math.ceil(timeout_s)
        container = self.client.containers.container(container_id)
        self._ended.add(container_id)
        logger.info(
            "stopping docker runtime", extra={"container_id": container_id, "timeout_s": grace}
        )
        try:
            if info.state is ContainerState.PAUSED:
                # Podman refuses to stop a paused container; a frozen one cannot act on SIGTERM.
                async with self._engine("unpause", container_id):
                    await container.unpause()
            async with self._engine("stop", container_id):
                await container.stop(t=grace)
        except DriverError:
            final = await self.inspect(container_id)
            if final.state is ContainerState.EXITED:
                return final  # it ended by itself meanwhile
            self._ended.discard(container_id)
            raise
        return await self.inspect(container_id)

    async def pause(self, container_id: str) -> None:
        await self._switch(container_id, ContainerState.RUNNING, ContainerState.PAUSED, "pause")

    async def resume(self, container_id: str) -> None:
        await self._switch(container_id, ContainerState.PAUSED, ContainerState.RUNNING, "unpause")

    async def remove(self, container_id: str) -> None:
        self._ended.add(container_id)
        self._removed.add(container_id)
        try:
            async with self._engine("remove", container_id):
                await self.client.containers.container(container_id).delete(force=True, v=True)
        except ContainerGone:
            return
        except DriverError:
            self._removed.discard(container_id)
            raise
        logger.info("docker runtime removed", extra={"container_id": container_id})

    async def inspect(self, container_id: str) -> ContainerInfo:
        try:
            return container_info(container_id, await self._inspect(container_id))
        except ContainerGone:
            return ContainerInfo(container_id, ContainerState.MISSING, detail="no such container")

    async def list_containers(self) -> list[ContainerInfo]:
        # Key=value: Podman 4 ignores a label filter given by key alone.
        selector = json.dumps({"label": [f"{INSTANCE_LABEL}={self.instance}"]})
        async with self._engine("list"):
            listed = await self.client.containers.list(all=True, filters=selector)
        found = [await self.inspect(container.id) for container in listed]
        return [info for info in found if info.state is not ContainerState.MISSING]

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        return await self.output.logs(container_id, query)

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        return await self.output.metrics(container_id, window_s)

    # -- for the event watcher ----------------------------------------------

    def ended_by_runplane(self, container_id: str) -> bool:
        """Whether runplane stopped or removed this container (or is doing so)."""
        return container_id in self._ended

    def removed_by_runplane(self, container_id: str) -> bool:
        return container_id in self._removed

    async def health_status(self, container_id: str) -> str | None:
        """The engine's healthcheck status ("starting", "healthy", "unhealthy"),
        None when the container has no healthcheck."""
        state = (await self._inspect(container_id)).get("State") or {}
        status = (state.get("Health") or {}).get("Status")
        return str(status) if status else None

    @contextlib.asynccontextmanager
    async def event_stream(
        self, *, since_s: float | None
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Connect to this instance's container events: those the engine kept
        from `since_s` (engine time, seconds) when given, then live ones. Entered
        once the engine answered, so nothing that happens after entering is
        missed. The iterator ends when the engine hangs up; DriverError when it
        cannot be reached or the stream breaks."""
        query = {"type": ["container"], "label": [f"{INSTANCE_LABEL}={self.instance}"]}
        params: dict[str, Any] = {"filters": json.dumps(query)}
        if since_s is not None:
            params["since"] = f"{max(since_s, 0.0):.9f}"
        async with contextlib.AsyncExitStack() as stack:
            async with self._engine("events"):
                # aiodocker's DockerEvents fans one stream out to subscribers and
                # turns times into naive datetimes; a plain streaming GET suits a
                # watcher that reconnects better.
                response = await stack.enter_async_context(
                    self.client._query("events", params=params, timeout=None)
                )
                stack.callback(response.close)  # _query leaves that to its caller
            yield decoded_events(response)

    # -- helpers --------------------------------------------------------------

    async def _inspect(self, container_id: str) -> dict[str, Any]:
        async with self._engine("inspect", container_id):
            inspected: dict[str, Any] = await self.client.containers.container(container_id).show()
        return inspected

    async def _switch(
        self, container_id: str, source: ContainerState, target: ContainerState, op: str
    ) -> None:
        """`op` takes a container from `source` to `target`; one already in
        `target` needs nothing, one in neither is gone (not running)."""
        state = (await self.inspect(container_id)).state
        if state is target:
            return
        if state is not source:
            raise ContainerGone(container_id)
        container = self.client.containers.container(container_id)
        async with self._engine(op, container_id):
            await (container.pause() if op == "pause" else container.unpause())

    async def _discard(self, container_id: str) -> None:
        """Remove a container whose start failed (best effort)."""
        self._ended.add(container_id)
        self._removed.add(container_id)
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            await self.client.containers.container(container_id).delete(force=True)

    def _engine(
        self, op: str, container_id: str | None = None, *, image: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return engine_errors(self.url, op, container_id, image=image)


__all__ = ["DEFAULT_DOCKER_HOST", "INSTANCE_LABEL", "RUNTIME_ID_LABEL", "DockerDriver"]
