"""Talking to a Docker Engine API: where it listens, its failures as runplane's
errors, its event stream decoded, and the bounded memory the driver and the
event watcher keep of containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import Any

import aiodocker
import aiohttp

from runplane.domain.errors import ContainerGone, DriverError, SpecRefused

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_URL_SCHEMES = ("unix://", "tcp://", "http://", "https://")


def normalise_docker_host(url: str) -> str:
    """`unix:///path`, `tcp://host:port` or `http(s)://...`; a bare socket path
    is taken for `unix://`. Raises ValueError for anything else."""
    url = url.strip()
    if url.startswith("/"):
        return f"unix://{url}"
    if not url.startswith(_URL_SCHEMES) or url.rstrip("/") in _URL_SCHEMES:
        raise ValueError(f"docker host {url!r} must be unix:///path/to/socket or tcp://host:port")
    return url


class RecentSet:
    """A bounded set (container ids, event keys): the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[Hashable, None] = OrderedDict()
        self._capacity = capacity

    def add(self, item: Hashable) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def discard(self, item: Hashable) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items


@contextlib.asynccontextmanager
async def engine_errors(
    url: str, op: str, container_id: str | None = None, *, image: str | None = None
) -> AsyncIterator[None]:
    """Engine failures as runplane's: 404 on a container is ContainerGone,
    anything else DriverError."""
    try:
        yield
    except aiodocker.DockerError as exc:
        if exc.status == 404 and container_id is not None:
            raise ContainerGone(container_id) from exc
        if exc.status == 404 and image is not None and "image" in reason(exc).lower():
            raise SpecRefused(
                f"image {image!r} is not on the engine at {url}; runplane pulls "
                "nothing: pull, load or build it there first"
            ) from exc
        if image is not None and _refused_spec(exc):
            raise SpecRefused(f"docker {op} refused: {reason(exc)}") from exc
        raise DriverError(f"docker {op} failed: {reason(exc)}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError) as exc:
        raise DriverError(f"docker {op} failed: {reason(exc)}") from exc


def _refused_spec(exc: aiodocker.DockerError) -> bool:
    """A create the engine will not make as asked (an unknown network, a bad
    limit): retrying the same spec cannot help. Podman answers an unknown network
    with a 500, Docker with a 404."""
    text = reason(exc).lower()
    return exc.status in (400, 404) or (exc.status == 500 and "network not found" in text)


async def decoded_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    try:
        async for line in response.content:
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                yield event
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        raise DriverError(f"the docker event stream broke: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    if isinstance(exc, aiodocker.DockerError):
        return str(exc.message).strip()
    return str(exc) or type(exc).__name__


INSPECT_TRIES = 3
_INSPECT_AGAIN_S = 0.05


async def inspect_started(
    container: aiodocker.containers.DockerContainer, url: str
) -> dict[str, Any]:
    """A container just started, inspected. Podman answers 500 ("read
    /proc/<pid>/cgroup: no such process") when the container's process ends
    while it reads /proc for it, as a command that exits at once does: asked
    again a moment later, it answers. Gone (404) is told at once."""
    tries = 1
    while True:
        try:
            async with engine_errors(url, "inspect", container.id):
                return dict(await container.show())
        except ContainerGone:
            raise
        except DriverError:
            if tries >= INSPECT_TRIES:
                raise
        tries += 1
        await asyncio.sleep(_INSPECT_AGAIN_S)
