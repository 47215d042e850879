"""What a host says of itself (its id, address, labels, capacity, drivers), and
its wire form: the JSON an agent's heartbeat carries over Redis. Agents are not
trusted to send clean data, so the wire form is checked here, with the same
rules the host record itself enforces (`domain/hosts.py`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runplane.domain.hosts import (
    HOST_ID_RULE,
    MAX_ADDRESS,
    MAX_DRIVERS,
    Capacity,
    Host,
    InvalidHost,
    check_labels,
    is_valid_host_id,
)

DRIVER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_DETAILS_BYTES = 64 * 1024
"""A beat larger than this is refused unread (32 labels of 256 characters fit)."""


@dataclass(frozen=True, slots=True)
class HostDetails:
    """What a host says of itself when it registers (or beats)."""

    host_id: str
    address: str = ""
    labels: Mapping[str, str] | None = None
    capacity: Capacity = field(default_factory=Capacity)
    drivers: Sequence[str] = ()

    def check(self) -> HostDetails:
        """Self, when every field keeps the host rules; InvalidHost otherwise."""
        if not isinstance(self.host_id, str) or not is_valid_host_id(self.host_id):
            raise InvalidHost(f"host_id must be {HOST_ID_RULE}")
        if not isinstance(self.address, str) or len(self.address) > MAX_ADDRESS:
            raise InvalidHost(f"address: a string of at most {MAX_ADDRESS} characters")
        check_labels(dict(self.labels or {}))
        if len(self.drivers) > MAX_DRIVERS:
            raise InvalidHost(f"at most {MAX_DRIVERS} drivers")
        for name in self.drivers:
            if not isinstance(name, str) or not DRIVER_NAME.fullmatch(name):
                raise InvalidHost(f"driver name must match {DRIVER_NAME.pattern}")
        return self

    def differs_from(self, host: Host) -> bool:
        """Whether registering these details would change the stored host."""
        return (
            host.address != self.address
            or host.labels != dict(self.labels or {})
            or host.capacity != self.capacity
            or host.drivers != tuple(self.drivers)
        )


def details_to_json(details: HostDetails) -> str:
    capacity = details.capacity
    return json.dumps(
        {
            "host_id": details.host_id,
            "address": details.address,
            "labels": dict(details.labels or {}),
            "capacity": {
                "cpus": capacity.cpus,
                "memory_mb": capacity.memory_mb,
                "max_runtimes": capacity.max_runtimes,
            },
            "drivers": list(details.drivers),
        },
        separators=(",", ":"),
    )


def details_from_json(raw: str | bytes) -> HostDetails:
    """The details a beat carries; InvalidHost for anything that is not a clean
    host (not JSON, wrong shapes, values the host rules refuse)."""
    if len(raw) > MAX_DETAILS_BYTES:
        raise InvalidHost(f"host details larger than {MAX_DETAILS_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidHost("host details are not JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidHost("host details must be an object")
    labels = doc.get("labels") or {}
    capacity = doc.get("capacity") or {}
    drivers = doc.get("drivers") or []
    if not isinstance(labels, dict) or not isinstance(capacity, dict):
        raise InvalidHost("labels and capacity must be objects")
    if not isinstance(drivers, list):
        raise InvalidHost("drivers must be a list")
    return HostDetails(
        host_id=doc.get("host_id"),  # type: ignore[arg-type]  # checked below
        address=doc.get("address", ""),
        labels=labels,
        capacity=Capacity(
            cpus=_number(capacity.get("cpus"), float),
            memory_mb=_number(capacity.get("memory_mb"), int),
            max_runtimes=_number(capacity.get("max_runtimes"), int),
        ),
        drivers=tuple(drivers),
    ).check()


def _number(value: Any, kind: type[float] | type[int]) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidHost("capacity values must be numbers or null")
    if kind is int and not (isinstance(value, int) or float(value).is_integer()):
        raise InvalidHost("memory_mb and max_runtimes must be whole numbers")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidHost("capacity values must be finite")
    return kind(value)
