"""Snapshots of docker runtimes: the container committed to a local image
`runplane-snapshots/<snapshot_id>:latest` on the runtime's engine; a runtime
made from it runs that image (docker_spec: `snapshot`)."""

from __future__ import annotations

import aiodocker

from runplane.adapters.drivers.docker import DockerDriver
from runplane.domain.errors import DriverError
from runplane.domain.snapshots import (
    SNAPSHOT_IMAGE_REPOSITORY,
    TakenSnapshot,
    is_valid_snapshot_id,
    snapshot_image,
)


class SnapshottingDockerDriver(DockerDriver):
    """The docker driver, able to commit snapshots and remove them."""

    async def snapshot(self, container_id: str, snapshot_id: str) -> TakenSnapshot:
        if not is_valid_snapshot_id(snapshot_id):
            raise DriverError(f"{snapshot_id!r} is not a snapshot id")
        image = snapshot_image(snapshot_id)
        repository, _, tag = image.rpartition(":")
        async with self._engine("commit", container_id):
            # pause=True (the engine's default): a running container is frozen
            # while its filesystem is read, so the image is consistent.
            await self.client.containers.container(container_id).commit(
                repository=repository,
                tag=tag,
                message=f"runplane snapshot {snapshot_id}",
                config={},  # an empty body is a decode error on Podman's API
            )
        async with self._engine("inspect image", image=image):
            size = (await self.client.images.inspect(image)).get("Size")
        return TakenSnapshot(image, int(size) if isinstance(size, int | float) else None)

    async def delete_snapshot(self, ref: str) -> None:
        if not ref.startswith(SNAPSHOT_IMAGE_REPOSITORY + "/"):
            raise DriverError(f"{ref!r} is not an image of runplane's snapshots")
        try:
            async with self._engine("remove image"):
                await self.client.images.delete(ref)
        except DriverError as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status == 404:
                return  # gone already
            raise
