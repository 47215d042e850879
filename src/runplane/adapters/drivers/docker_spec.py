"""The `docker` driver's JSON both ways: a runtime's spec (which image runs how),
checked once and normalised so what is stored is what runs, then turned into
an Engine API create body; and what the engine's inspect answers, as a
ContainerInfo.

Normalised form: `image`, `env`, `labels`, `network_mode` (default "none": a
runtime gets no network unless its spec asks for one), `ports` (a list of
`{"container_port": N}` with `"host_port"` when fixed) and `stop_timeout_s`
are always present; `command`, `memory_mb`, `cpus`, `health`,
`restart_policy` and `placement` only when given. Null counts as absent.
Validating a normalised spec returns it unchanged.
"""

from __future__ import annotations

import math
import re
import signal
from typing import Any

from runplane.domain.driver_specs import (
    PLACEMENT,
    checked_object,
    copy_passed_through,
    kind,
    stop_timeout,
)
from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.errors import InvalidSpec
from runplane.domain.snapshots import SNAPSHOT_SPEC_KEY, snapshot_docker_image

DEFAULT_NETWORK_MODE = "none"
MIN_MEMORY_MB = 6.0
"""The smallest memory limit Docker accepts."""
MAX_CPUS = 1024.0
RESERVED_LABEL_PREFIX = "runplane."
RUNTIME_ID_LABEL = "runplane.runtime_id"
INSTANCE_LABEL = "runplane.instance"
_RUNNING = frozenset({"running", "restarting", "stopping"})
_NEVER_STARTED = frozenset({"created", "configured", "initialized"})

_FIELDS = (
    "image",
    "command",
    "env",
    "labels",
    "memory_mb",
    "cpus",
    "network_mode",
    "ports",
    "stop_timeout_s",
    "health",
    "restart_policy",
    PLACEMENT,
    SNAPSHOT_SPEC_KEY,
)
_NETWORK_MODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")
_NO_PUBLISHING = frozenset({"none", "host"})


def _image_or_snapshot(spec: dict[str, Any]) -> str:
    return snapshot_docker_image(spec) or _image(spec.get("image"))


def validate_docker_spec(spec: object) -> dict[str, Any]:
    """The normalised spec; raises InvalidSpec naming the first field at fault."""
    spec = checked_object(spec, _FIELDS)
    normalised: dict[str, Any] = {
        "image": _image_or_snapshot(spec),
        "env": _string_map("env", spec.get("env")),
        "labels": _labels(spec.get("labels")),
        "network_mode": _network_mode(spec.get("network_mode")),
        "stop_timeout_s": stop_timeout(spec.get("stop_timeout_s")),
    }
    normalised["ports"] = _ports(spec.get("ports"), normalised["network_mode"])
    if spec.get("command") is not None:
        normalised["command"] = _command(spec["command"])
    if spec.get("memory_mb") is not None:
        normalised["memory_mb"] = _number("memory_mb", spec["memory_mb"], MIN_MEMORY_MB, None)
    if spec.get("cpus") is not None:
        normalised["cpus"] = _number("cpus", spec["cpus"], 0.01, MAX_CPUS)
    copy_passed_through(spec, normalised)
    return normalised


def create_body(spec: dict[str, Any], labels: dict[str, str], publish_host: str) -> dict[str, Any]:
    """The `POST /containers/create` body for a normalised spec. `labels` are
    runplane's own, added over the spec's. The engine restarts nothing by
    itself: restarts are runplane's (`restart_policy`)."""
    host_config: dict[str, Any] = {
        "NetworkMode": spec["network_mode"],
        "RestartPolicy": {"Name": "no"},
    }
    if "memory_mb" in spec:
        limit = int(spec["memory_mb"] * 1024 * 1024)
        # Swap counts against the same limit, so the limit is what the runtime gets.
        host_config.update(Memory=limit, MemorySwap=limit)
    if "cpus" in spec:
        host_config["NanoCpus"] = int(spec["cpus"] * 1_000_000_000)
    body: dict[str, Any] = {
        "Image": spec["image"],
        "Env": [f"{key}={value}" for key, value in spec["env"].items()],
        "Labels": {**spec["labels"], **labels},
        "StopTimeout": math.ceil(spec["stop_timeout_s"]),
        "HostConfig": host_config,
    }
    if "command" in spec:
        body["Cmd"] = list(spec["command"])
    if spec["ports"] and spec["network_mode"] not in _NO_PUBLISHING:
        body["ExposedPorts"] = {_port_key(port): {} for port in spec["ports"]}
        host_config["PortBindings"] = {
            _port_key(port): [{"HostIp": publish_host, "HostPort": str(port.get("host_port", ""))}]
            for port in spec["ports"]
        }
    return body


def endpoint_port(spec: dict[str, Any], inspected: dict[str, Any]) -> int | None:
    """The host port of the spec's first port, as the started container shows it."""
    if not spec["ports"]:
        return None
    first = spec["ports"][0]
    if spec["network_mode"] == "host":
        port: int = first["container_port"]
        return port
    bindings = ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).get(_port_key(first))
    for binding in bindings or ():
        if str(binding.get("HostPort", "")).isdigit():
            return int(binding["HostPort"])
    return None


def container_info(container_id: str, inspected: dict[str, Any]) -> ContainerInfo:
    """What `GET /containers/{id}/json` says, as runplane's ContainerInfo. An exit
    code past 128 is read as death by signal (code - 128), as shells report it."""
    state: dict[str, Any] = inspected.get("State") or {}
    labels: dict[str, str] = (inspected.get("Config") or {}).get("Labels") or {}
    runtime_id = labels.get(RUNTIME_ID_LABEL)
    status = str(state.get("Status", "")).lower()
    if state.get("Paused") or status == "paused":
        return ContainerInfo(container_id, ContainerState.PAUSED, runtime_id=runtime_id)
    if state.get("Running") or status in _RUNNING:
        return ContainerInfo(container_id, ContainerState.RUNNING, runtime_id=runtime_id)
    if status == "removing":
        detail = "being removed"
        return ContainerInfo(
            container_id, ContainerState.MISSING, detail=detail, runtime_id=runtime_id
        )
    if status in _NEVER_STARTED:
        detail = "created but never started"
        return ContainerInfo(
            container_id, ContainerState.EXITED, detail=detail, runtime_id=runtime_id
        )
    exit_code = int(state.get("ExitCode", 0))
    sig = exit_code - 128 if 128 < exit_code <= 128 + 64 else None
    oom = bool(state.get("OOMKilled"))
    return ContainerInfo(
        container_id,
        ContainerState.EXITED,
        exit_code=exit_code,
        signal=sig,
        detail=_exit_detail(exit_code, sig, oom, str(state.get("Error") or "")),
        runtime_id=runtime_id,
        oom_killed=oom,
    )


def _exit_detail(exit_code: int, sig: int | None, oom: bool, error: str) -> str:
    if oom:
        detail = f"killed for exceeding its memory limit (code {exit_code})"
    elif sig is not None:
        detail = f"exited with code {exit_code} ({_signal_name(sig)})"
    else:
        detail = f"exited with code {exit_code}"
    return f"{detail}: {error}" if error else detail


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _port_key(port: dict[str, Any]) -> str:
    return f"{port['container_port']}/tcp"


def _image(value: object) -> str:
    if value is None:
        raise InvalidSpec("image is required: the name of an image already on the engine")
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise InvalidSpec(f"image must be an image name without spaces, not {value!r}")
    return value


def _command(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidSpec(f"command must be a non-empty list of strings, not {kind(value)}")
    for index, part in enumerate(value):
        if not isinstance(part, str):
            raise InvalidSpec(f"command[{index}] must be a string, not {kind(part)}")
        if "\0" in part:
            raise InvalidSpec(f"command[{index}] must not contain a NUL character")
    return list(value)


def _string_map(name: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpec(f"{name} must be an object of strings, not {kind(value)}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidSpec(f"{name} name {key!r} must be a non-empty string without '=' or NUL")
        if not isinstance(item, str) or "\0" in item:
            raise InvalidSpec(f"{name}[{key!r}] must be a string without NUL, not {kind(item)}")
        result[key] = item
    return result


def _labels(value: object) -> dict[str, str]:
    labels = _string_map("labels", value)
    for key in labels:
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise InvalidSpec(f"label {key!r}: the {RESERVED_LABEL_PREFIX}* labels are runplane's")
    return labels


def _network_mode(value: object) -> str:
    if value is None:
        return DEFAULT_NETWORK_MODE
    if not isinstance(value, str) or not _NETWORK_MODE.match(value):
        raise InvalidSpec(
            f"network_mode must be 'none', 'host', 'bridge' or a network name, not {value!r}"
        )
    return value


def _ports(value: object, network_mode: str) -> list[dict[str, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpec(f"ports must be a list of container ports, not {kind(value)}")
    if value and network_mode == "none":
        raise InvalidSpec(
            "ports need a network: with network_mode 'none' nothing can reach them; "
            "use 'host' or 'bridge'"
        )
    ports = [_port(index, item) for index, item in enumerate(value)]
    if network_mode == "host" and any(
        p.get("host_port", p["container_port"]) != p["container_port"] for p in ports
    ):
        raise InvalidSpec("with network_mode 'host' a port is the container's own: no host_port")
    return ports


def _port(index: int, item: object) -> dict[str, int]:
    if isinstance(item, dict):
        unknown = sorted(str(key) for key in item if key not in ("container_port", "host_port"))
        if unknown:
            raise InvalidSpec(f"ports[{index}]: unknown field(s) {', '.join(unknown)}")
        port = {
            "container_port": _port_number(
                f"ports[{index}].container_port", item.get("container_port")
            )
        }
        if item.get("host_port") is not None:
            port["host_port"] = _port_number(f"ports[{index}].host_port", item["host_port"])
        return port
    return {"container_port": _port_number(f"ports[{index}]", item)}


def _port_number(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(f"{name} must be an integer from 1 to 65535, not {value!r}")
    return value


def _number(name: str, value: object, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSpec(f"{name} must be a number, not {kind(value)}")
    if value < low or (high is not None and value > high):
        bound = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise InvalidSpec(f"{name} must be {bound}, not {value!r}")
    return float(value)
