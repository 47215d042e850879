"""What a driver reports: the values, not the I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ContainerState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    EXITED = "exited"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class StartedContainer:
    container_id: str
    engine_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    container_id: str
    state: ContainerState
    exit_code: int | None = None
    signal: int | None = None
    detail: str = ""
    runtime_id: str | None = None
    """The runtime the container was started for, when the driver knows it
    (list_containers fills it, so orphans can be told apart)."""
    oom_killed: bool = False
