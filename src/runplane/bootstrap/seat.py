"""Claiming a host's seat at start: the token kept in the data dir (`agent.id`,
0600, created once), so the same data dir is the same holder across restarts."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from runplane.adapters.redis.names import host_agent_lease, lease_key
from runplane.config import Settings
from runplane.ports.leases import LeaseStore
from runplane.services.hosts.seat import HostSeat

TOKEN_FILE = "agent.id"
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def seat_token(data_dir: Path) -> str:
    """The holder token of this data dir: read, or created once (0600)."""
    path = data_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not TOKEN_PATTERN.fullmatch(token):
            raise SystemExit(
                f"runplane: {path} is not a runplane agent id; remove it to make a new one"
            ) from None
        return token
    token = secrets.token_hex(16)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def seat_ttl_ms(settings: Settings) -> int:
    """A lease TTL, and never less than three heartbeats (it is renewed on each)."""
    return max(settings.lease_ttl_ms, int(settings.host_heartbeat_s * 3000))


async def claim_seat(settings: Settings, leases: LeaseStore, who: str, advice: str) -> HostSeat:
    """The seat of settings.host_id, ours; waits up to one TTL for a holder that
    died, then exits with a message naming the host (`who`: the command)."""
    host_id = settings.host_id
    ttl_ms = seat_ttl_ms(settings)
    seat = HostSeat(
        leases, host_agent_lease(host_id), host_id, seat_token(settings.data_dir), ttl_ms=ttl_ms
    )
    if not await seat.claim(wait_ms=ttl_ms):
        raise SystemExit(
            f"{who}: host {host_id!r} is already served by another agent "
            f"(the lease {lease_key(seat.name)} is held by another data dir); {advice}"
        )
    return seat
