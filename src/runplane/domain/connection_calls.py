"""The `connections` host call (issue 16's idle rule): which runtimes' ports to
count, as the call's `spec` carries them, and the ports a spec declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PortsOf = tuple[str, tuple[int, ...]]
"""(container_id, the ports the runtime's spec declares it serves on)."""

MAX_ITEMS = 1000
"""Items in one call (a call entry stays far below host_calls.MAX_CALL_BYTES);
more idle-watched runtimes on one host are asked in several calls."""


def items_to_spec(items: Sequence[PortsOf]) -> dict[str, Any]:
    return {"items": [[container_id, list(ports)] for container_id, ports in items]}


def items_from_spec(spec: dict[str, Any]) -> list[PortsOf]:
    """The items of a call's spec; ValueError for anything malformed."""
    raw = spec.get("items")
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise ValueError(f"items must be a list of at most {MAX_ITEMS}")
    items: list[PortsOf] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError("each item is [container_id, [port, ...]]")
        container_id, ports = item
        if not isinstance(ports, list) or len(ports) > 64 or not all(_is_port(p) for p in ports):
            raise ValueError("ports must be at most 64 integers from 1 to 65535")
        items.append((container_id[:256], tuple(ports)))
    return items


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def declared_ports(spec: dict[str, Any]) -> tuple[int, ...]:
    """The ports a runtime serves on: a process spec's `port`, a container
    spec's `ports[].container_port` (inside its namespace)."""
    ports: list[int] = []
    if _is_port(spec.get("port")):
        ports.append(spec["port"])
    for entry in spec.get("ports") or ():
        if isinstance(entry, dict) and _is_port(entry.get("container_port")):
            ports.append(entry["container_port"])
    return tuple(ports)
