"""Bodies of /v1/hosts (admin keys only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from runplane.domain.hosts import Host, HostStatus


class CapacityOut(BaseModel):
    cpus: float | None
    memory_mb: int | None
    max_runtimes: int | None


class HostOut(BaseModel):
    host_id: str
    address: str
    status: HostStatus
    admin_status: HostStatus = Field(
        description="what an admin last set (up, draining, cordoned): a down host comes back so"
    )
    labels: dict[str, str]
    capacity: CapacityOut
    drivers: list[str]
    registered_at: datetime
    last_heartbeat_at: datetime
    version: int

    @classmethod
    def of(cls, host: Host) -> HostOut:
        return cls(
            host_id=host.host_id,
            address=host.address,
            status=host.status,
            admin_status=host.admin_status,
            labels=dict(host.labels),
            capacity=CapacityOut(
                cpus=host.capacity.cpus,
                memory_mb=host.capacity.memory_mb,
                max_runtimes=host.capacity.max_runtimes,
            ),
            drivers=list(host.drivers),
            registered_at=host.registered_at,
            last_heartbeat_at=host.last_heartbeat_at,
            version=host.version,
        )


class HostListOut(BaseModel):
    hosts: list[HostOut]
