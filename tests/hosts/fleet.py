"""The servers a hosts trial runs on: one Redis, one Postgres, `runplane agent`
per host (each with a data dir and a work dir of its own) and several
`runplane serve` instances without a host of their own, all started here and
stopped, with every runtime process the agents started, when the trial ends."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.faults.cluster import kill_runtime_processes, proc_alive
from tests.faults.measure import read_json
from tests.hosts import netns
from tests.hosts.netns import Netns
from tests.support.agent import RunplaneAgent
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.redis_cluster import RedisClusterServer
from tests.support.serve import RunplaneServer

HEARTBEAT_S = 1.0
DOWN_AFTER_S = 4.0
"""Short, so a trial sees a lost host within seconds (defaults: 2 s and 10 s)."""

SERVE_SETTINGS = {
    "embedded_host": "false",
    "host_heartbeat_s": str(HEARTBEAT_S),
    "host_down_after_s": str(DOWN_AFTER_S),
    "start_timeout_s": "15",
    "stop_timeout_s": "15",
    "reconcile_interval_s": "3",
    "reconcile_jitter_s": "1",
    "health_monitor_interval_s": "1",
    "restart_backoff_base_s": "0.2",
    "restart_backoff_cap_s": "2",
    "stream_claim_idle_ms": "30000",
    "log_format": "text",
}
AGENT_SETTINGS = {"host_heartbeat_s": str(HEARTBEAT_S), "log_format": "text"}


@dataclass
class Fleet:
    base_dir: Path
    redis: RedisServer | RedisClusterServer
    postgres: PostgresServer
    database_url: str
    agents: dict[str, RunplaneAgent] = field(default_factory=dict)
    serves: list[RunplaneServer] = field(default_factory=list)
    networks: list[Netns] = field(default_factory=list)
    """One network namespace per agent, when the machine allows it."""

    @classmethod
    def start(
        cls,
        hosts: int = 3,
        serves: int = 2,
        base_dir: Path | None = None,
        isolate: bool = True,
        cluster: bool = False,
        serve_settings: dict[str, str] | None = None,
    ) -> Fleet:
        """`isolate`: each agent in a network namespace of its own, if the machine
        allows (not with `cluster`: its nodes announce loopback addresses).
        `cluster`: a 3-node Redis Cluster instead of one redis-server."""
        base = base_dir or Path(tempfile.mkdtemp(prefix="runplane-hosts-"))
        isolate = isolate and not cluster and netns.available()
        networks = netns.namespaces(hosts) if isolate else []
        redis_server: RedisServer | RedisClusterServer
        try:
            if cluster:
                redis_server = RedisClusterServer.start(base / "redis-cluster")
            else:
                redis_server = RedisServer.start(base / "redis", tuple(n.outer for n in networks))
        except BaseException:
            for network in networks:
                network.delete()
            raise
        shared = {"redis_cluster": "true"} if cluster else {}
        fleet = cls(base, redis_server, None, "", networks=networks)  # type: ignore[arg-type]
        try:
            fleet.postgres = PostgresServer.start(base / "postgres")
            fleet.database_url = fleet.postgres.create_database("hosts")
            for n in range(1, hosts + 1):
                host_id = f"host-{n}"
                network = networks[n - 1] if networks else None
                address = network.outer if network else "127.0.0.1"
                fleet.agents[host_id] = RunplaneAgent.launch(
                    base / host_id,
                    redis_url=fleet.redis.url.replace("127.0.0.1", address),
                    host_id=host_id,
                    prefix=network.prefix if network else (),
                    host_address=network.inner if network else "",
                    work_dir=str(base / f"{host_id}-work"),
                    host_labels=f"zone={'ab'[n % 2]}",
                    **AGENT_SETTINGS,
                    **shared,
                )
            for n in range(serves):
                fleet.serves.append(
                    RunplaneServer.launch(
                        base / f"serve-{n}",
                        redis_url=fleet.redis.url,
                        database_url=fleet.database_url,
                        **(SERVE_SETTINGS | shared | (serve_settings or {})),
                    )
                )
            fleet.wait_hosts_up(list(fleet.agents))
        except BaseException:
            fleet.close()
            raise
        return fleet

    def client(self, serve: int = 0, timeout_s: float = 60.0) -> httpx.Client:
        server = self.serves[serve]
        return httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=timeout_s,
        )

    def hosts(self) -> dict[str, str]:
        """host_id -> status, as serve 0 reports them."""
        with self.client() as http:
            reply = http.get("/v1/hosts")
        reply.raise_for_status()
        return {h["host_id"]: h["status"] for h in reply.json()["hosts"]}

    def wait_hosts_up(self, host_ids: list[str], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                statuses = self.hosts()
                if all(statuses.get(h) == "up" for h in host_ids):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"hosts {host_ids} not up: {self.hosts()}")

    def kill_agent(self, host_id: str) -> None:
        self.agents[host_id].stop(signal.SIGKILL)

    def containers_dirs(self) -> dict[str, Path]:
        return {h: a.data_dir / "runtimes" / "containers" for h, a in self.agents.items()}

    def live_processes(self) -> dict[str, list[tuple[str, str]]]:
        """runtime_id -> [(host_id, container_id)] of every live runtime process
        on every host, read from the agents' state files and /proc."""
        found: dict[str, list[tuple[str, str]]] = {}
        for host_id, containers in self.containers_dirs().items():
            for state_file in containers.glob("p-*/state.json"):
                state = read_json(state_file)
                pid, ticks = state.get("pid"), state.get("start_ticks")
                runtime_id = state.get("runtime_id") or read_json(
                    state_file.with_name("meta.json")
                ).get("runtime_id")
                if isinstance(pid, int) and isinstance(ticks, int) and proc_alive(pid, ticks):
                    found.setdefault(str(runtime_id), []).append((host_id, state_file.parent.name))
        return found

    def runtime_networks(self) -> set[str]:
        """The network namespaces the live runtime processes are in (one per
        host when each agent has its own)."""
        found: set[str] = set()
        for containers in self.containers_dirs().values():
            for state_file in containers.glob("p-*/state.json"):
                pid, ticks = (
                    read_json(state_file).get("pid"),
                    read_json(state_file).get("start_ticks"),
                )
                if isinstance(pid, int) and isinstance(ticks, int) and proc_alive(pid, ticks):
                    with contextlib.suppress(OSError):
                        found.add(os.readlink(f"/proc/{pid}/ns/net"))
        return found

    def close(self) -> None:
        """Stop every serve and agent, end every runtime process, stop Postgres
        and Redis. Safe to call twice."""
        for server in self.serves:
            server.stop(signal.SIGKILL)
        for agent in self.agents.values():
            agent.stop(signal.SIGKILL)
        for containers in self.containers_dirs().values():
            kill_runtime_processes(containers)
        if self.postgres is not None:
            self.postgres.stop()
        self.redis.stop()
        for network in self.networks:
            network.delete()
