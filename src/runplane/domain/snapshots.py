"""Snapshots (DESIGN §11): a reusable template made from a runtime. A docker
runtime's container is committed to a local image; a process runtime's working
directory is copied. A snapshot lives where it was taken (that host's engine or
disk), so a runtime made from it is placed on that host."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runplane.domain.errors import InvalidSpec, RunplaneError

SNAPSHOT_SPEC_KEY = "snapshot"
"""The spec field naming the snapshot a runtime starts from. Set by runplane
when a runtime is created from a snapshot; a caller's own spec may not carry it."""
SNAPSHOT_ID_RULE = "'snap-' and 1-64 letters, digits, '_' or '-'"
_SNAPSHOT_ID = re.compile(r"^snap-[A-Za-z0-9_-]{1,64}$")
SNAPSHOT_IMAGE_REPOSITORY = "runplane-snapshots"
"""Docker snapshots are images `runplane-snapshots/<snapshot_id>:latest`."""


def is_valid_snapshot_id(value: object) -> bool:
    return isinstance(value, str) and bool(_SNAPSHOT_ID.match(value))


def snapshot_image(snapshot_id: str) -> str:
    return f"{SNAPSHOT_IMAGE_REPOSITORY}/{snapshot_id.lower()}:latest"


def snapshot_docker_image(spec: Mapping[str, Any]) -> str | None:
    """The image a docker spec that names a snapshot runs (None: it names none).
    An image of the snapshots' repository is reachable only through `snapshot`,
    whose team admission checks; naming it as `image` is refused."""
    snapshot_id = spec.get(SNAPSHOT_SPEC_KEY)
    if snapshot_id is not None:
        if not is_valid_snapshot_id(snapshot_id):
            raise InvalidSpec(f"{SNAPSHOT_SPEC_KEY} must be a snapshot id: {SNAPSHOT_ID_RULE}")
        return snapshot_image(snapshot_id)
    image = spec.get("image")
    if isinstance(image, str) and image.startswith(SNAPSHOT_IMAGE_REPOSITORY + "/"):
        raise InvalidSpec("images of runplane's snapshots are used through `snapshot`, not `image`")
    return None


@dataclass(frozen=True, slots=True)
class TakenSnapshot:
    """What a driver made: its reference (an image, a directory's name) and size."""

    ref: str
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: str
    team_id: str
    runtime_id: str
    """The runtime it was taken from (which may be gone since)."""
    driver: str
    host_id: str
    ref: str
    spec: dict[str, Any] = field(default_factory=dict)
    """The source runtime's spec when it was taken: what a new runtime starts with."""
    size_bytes: int | None = None
    created_at: datetime | None = None


class SnapshotNotFound(RunplaneError):
    """No snapshot with that id (or none the caller's team may see)."""


class SnapshotInUse(RunplaneError):
    """A snapshot a runtime was made from cannot be deleted while that runtime exists."""
