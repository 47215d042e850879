"""A runtime's `spec` per driver, typed for the OpenAPI document only.

The API keeps checking a spec where it always has (the driver's validator,
answering 400 `invalid_request` with a message naming the field at fault), so
these models validate nothing at run time: `api/openapi_specs.py` publishes
them. Their field names are the drivers' own (`tests/unit/test_openapi_specs.py`
compares them with the validators'), and every bound here is one the validator
applies too, so the document never refuses a spec the API takes. Null counts as
absent, as it does for the validators.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from runplane.domain.driver_specs import DEFAULT_STOP_TIMEOUT_S, MAX_STOP_TIMEOUT_S
from runplane.domain.health.spec import ProbeType, RestartMode
from runplane.domain.snapshots import SNAPSHOT_ID_RULE

Port = Annotated[int, Field(ge=1, le=65535)]
Argv = Annotated[list[str], Field(min_length=1)]
_CLOSED = ConfigDict(extra="forbid")
_STOP_TIMEOUT = Field(
    default=None,
    ge=0,
    le=MAX_STOP_TIMEOUT_S,
    description=f"seconds from the stop signal to a kill (default {DEFAULT_STOP_TIMEOUT_S:g})",
)
_SNAPSHOT = Field(default=None, description=f"start from this snapshot: {SNAPSHOT_ID_RULE}")


class HealthProbe(BaseModel):
    """A probe of the runtime (DESIGN §7); failures feed the health monitor."""

    model_config = _CLOSED

    type: ProbeType
    port: Port | None = Field(default=None, description="default: the runtime's own port")
    path: str | None = Field(default=None, description="http: the path to GET (default /)")
    expect_status: int | None = Field(default=None, description="http: default any 2xx")
    command: list[str] | None = Field(default=None, description="exec: required")
    initial_delay_s: float | None = Field(default=None, ge=0)
    period_s: float | None = Field(default=None, ge=0.01)
    timeout_s: float | None = Field(default=None, ge=0.01)
    failure_threshold: int | None = Field(default=None, ge=1)


class RestartPolicy(BaseModel):
    """Whether runplane restarts a runtime that went down, and how often."""

    model_config = _CLOSED

    mode: RestartMode | None = None
    max_retries: int | None = Field(default=None, ge=0)
    window_s: float | None = Field(default=None, ge=1)


class Placement(BaseModel):
    """Which host the runtime may be placed on."""

    model_config = _CLOSED

    host_labels: dict[str, str] | None = Field(
        default=None, description="labels the host must carry (none: any host)"
    )
    host_id: str | None = Field(default=None, description="only this host")


class ProcessSpec(BaseModel):
    """The `process` driver: an OS process under its own supervisor."""

    model_config = ConfigDict(
        extra="forbid",
        title="process spec",
        json_schema_extra={
            "examples": [{"command": ["python3", "-m", "http.server", "8000"], "port": 8000}]
        },
    )

    command: Argv = Field(description="the program and its arguments (required)")
    env: dict[str, str] | None = Field(default=None, description="the whole environment")
    cwd: str | None = Field(
        default=None, description="relative: inside the runtime's own working directory"
    )
    stop_signal: str | int | None = Field(
        default=None, description="a signal name (SIGTERM, TERM) or number; default SIGTERM"
    )
    stop_timeout_s: float | None = _STOP_TIMEOUT
    port: Port | None = Field(default=None, description="the port it serves on, if any")
    health: HealthProbe | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None
    snapshot: str | None = _SNAPSHOT


class PublishedPort(BaseModel):
    model_config = _CLOSED

    container_port: Port
    host_port: Port | None = Field(default=None, description="default: a free port")


class DockerSpec(BaseModel):
    """The `docker` driver: a container on Docker or Podman. `image` is required
    unless `snapshot` names the image to start from."""

    model_config = ConfigDict(
        extra="forbid",
        title="docker spec",
        json_schema_extra={
            "anyOf": [{"required": ["image"]}, {"required": ["snapshot"]}],
            "examples": [
                {
                    "image": "docker.io/library/nginx:alpine",
                    "network_mode": "bridge",
                    "ports": [{"container_port": 80}],
                    "memory_mb": 128,
                }
            ],
        },
    )

    image: str | None = Field(default=None, description="an image already on the engine")
    command: Argv | None = Field(default=None, description="default: the image's")
    env: dict[str, str] | None = None
    labels: dict[str, str] | None = Field(
        default=None, description="container labels; runplane.* are runplane's own"
    )
    memory_mb: float | None = Field(default=None, ge=6)
    cpus: float | None = Field(default=None, ge=0.01, le=1024)
    network_mode: str | None = Field(
        default=None, description="none (default: no network), host, bridge or a network name"
    )
    ports: list[PublishedPort | Port] | None = Field(
        default=None, description="need a network_mode other than none"
    )
    stop_timeout_s: float | None = _STOP_TIMEOUT
    health: HealthProbe | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None
    snapshot: str | None = _SNAPSHOT


SPECS: dict[str, type[BaseModel]] = {"process": ProcessSpec, "docker": DockerSpec}
"""Each driver's spec, by the driver's name (the `driver` of a create)."""
