"""A throwaway 3-node Redis Cluster for tests (no replicas): Debian's
redis-server in cluster mode, joined with `redis-cli --cluster create`."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port, is_free
from tests.support.redis import RedisServerFailed, _binary, _call

NODES = 3
READY_TIMEOUT_S = 60.0
REDIS_CLI = "/usr/bin/redis-cli"


BUS_OFFSET = 10_000
"""A node's cluster bus listens on its port + 10,000 (so the port is <= 55,535)."""


def _node_port() -> int:
    """A free port whose bus port is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET <= 65_535 and is_free(port + BUS_OFFSET):
            return port


def _cluster_state(port: int) -> bytes:
    try:
        return _call(port, b"CLUSTER INFO", timeout_s=1.0)
    except OSError:
        return b""


class RedisClusterServer:
    """Three primaries on 127.0.0.1, each owning a third of the slots. A stopped
    node's slots are not served (no replica takes over) until it starts again
    with its nodes.conf, so tests can watch a cluster fail and heal."""

    def __init__(self, base_dir: Path, ports: list[int]) -> None:
        self.base_dir = base_dir
        self.ports = ports
        self._binary = _binary()

    @classmethod
    def start(cls, base_dir: Path) -> RedisClusterServer:
        cluster = cls(base_dir, [_node_port() for _ in range(NODES)])
        atexit.register(cluster.stop)
        for index in range(NODES):
            cluster.start_node(index, wait=False)
        cli = shutil.which("redis-cli") or REDIS_CLI
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=READY_TIMEOUT_S,
        )  # fmt: skip
        cluster.wait_state(b"cluster_state:ok")
        return cluster

    @property
    def url(self) -> str:
        """The first node: a seed, from which a cluster client learns the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node_dir(self, index: int) -> Path:
        return self.base_dir / f"node{index}"

    def start_node(self, index: int, *, wait: bool = True) -> None:
        directory = self.node_dir(index)
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                self._binary,
                "--port", str(self.ports[index]),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / "nodes.conf"),
                "--cluster-node-timeout", "2000",
                "--dir", str(directory),
                "--daemonize", "yes",
                "--pidfile", str(directory / "redis.pid"),
                "--logfile", str(directory / "redis.log"),
                "--save", "",
                "--appendonly", "yes",
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        self._wait_answering(index)
        if wait:
            self.wait_state(b"cluster_state:ok")

    def stop_node(self, index: int) -> None:
        """SHUTDOWN one node (its AOF and nodes.conf stay for start_node)."""
        with contextlib.suppress(OSError):
            _call(self.ports[index], b"SHUTDOWN")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                _call(self.ports[index], b"PING", timeout_s=0.2)
            except OSError:
                return
            time.sleep(0.05)
        raise RedisServerFailed(f"cluster node {self.ports[index]} did not stop")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        for index in range(NODES):
            with contextlib.suppress(RedisServerFailed):
                self.stop_node(index)

    def wait_state(self, expected: bytes, *, on: int | None = None) -> None:
        """Wait until a live node (or node `on`) says `expected` in CLUSTER INFO."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        ports = self.ports if on is None else [self.ports[on]]
        while time.monotonic() < deadline:
            states = [_cluster_state(p) for p in ports]
            live = [s for s in states if s]
            if live and all(expected in s for s in live):
                return
            time.sleep(0.1)
        raise RedisServerFailed(f"cluster {self.ports} never reported {expected!r}")

    def _wait_answering(self, index: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if _call(self.ports[index], b"PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        log = self.node_dir(index) / "redis.log"
        raise RedisServerFailed(f"cluster node {self.ports[index]} did not start; see {log}")

    def __repr__(self) -> str:
        return f"RedisClusterServer(ports={self.ports})"
