"""One `runplane agent` per host id, with real agent processes: a second agent
(another data dir) exits non-zero naming the host; the first, killed -9 and
started again on its data dir, takes its seat back at once (its lease has not
expired: the token in `agent.id` is the holder's); a SIGTERM gives the seat up."""

from __future__ import annotations

import signal
import stat
import uuid
from pathlib import Path

import redis

from runplane.adapters.redis.names import host_agent_lease, host_beat_key, lease_key
from tests.support.agent import RunplaneAgent
from tests.support.redis import RedisServer


def test_one_agent_per_host_id(redis_server: RedisServer, tmp_path: Path) -> None:
    host_id = f"seat-{uuid.uuid4().hex[:8]}"
    seat = lease_key(host_agent_lease(host_id))
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    # The first holds its seat for 10 minutes: only its own token can take it back.
    first = RunplaneAgent.launch(tmp_path / "a", redis_server.url, host_id, lease_ttl_ms="600000")
    second: RunplaneAgent | None = None
    try:
        token_file = tmp_path / "a" / "agent.id"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert client.get(seat) == token

        second = RunplaneAgent.launch(
            tmp_path / "b",
            redis_server.url,
            host_id,
            wait=False,
            lease_ttl_ms="1000",  # it waits one TTL for a dead holder, then gives up
            host_heartbeat_s="0.2",
        )
        assert second.wait_exit() != 0
        assert f"host {host_id!r} is already served by another agent" in second.log()
        assert "RUNPLANE_HOST_ID" in second.log()

        first.stop(signal.SIGKILL)
        client.delete(host_beat_key(host_id))
        first.start()  # beats again: it holds the seat, which never expired
        assert client.get(seat) == token
        assert token_file.read_text().strip() == token

        first.stop(signal.SIGTERM)
        assert first.process is not None
        assert first.process.returncode == 0
        assert not client.exists(seat)  # released: a replacement may start at once
        assert client.exists(host_beat_key(host_id))  # the beat expires by itself
        client.delete(host_beat_key(host_id))  # so the wait below sees the second's beat
        second.start()
        assert client.get(seat) == (tmp_path / "b" / "agent.id").read_text().strip()
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop(signal.SIGKILL)
        client.delete(seat, host_beat_key(host_id))
        client.close()
