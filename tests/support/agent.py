"""A real `runplane agent` for end-to-end tests, launched like RunplaneServer:
stop it (any signal), start it again on the same env and data dir, and wait
until its beat is in Redis (the host monitor imports it from there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.cluster

from runplane.adapters.redis.names import host_beat_key
from tests.support.serve import BACKEND


@dataclass
class RunplaneAgent:
    data_dir: Path
    host_id: str
    env: dict[str, str]
    prefix: tuple[str, ...] = ()
    """Put before the command: e.g. `ip netns exec <ns>`, a network of its own."""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.with_name(f"{self.data_dir.name}-agent.log")

    @classmethod
    def launch(
        cls,
        data_dir: Path,
        redis_url: str,
        host_id: str,
        *,
        wait: bool = True,
        prefix: tuple[str, ...] = (),
        **settings: str,
    ) -> RunplaneAgent:
        # Runtimes run as the suite's own user (see RunplaneServer.launch).
        settings.setdefault("runtime_user", "")
        settings.setdefault("work_dir", str(data_dir.with_name(f"{data_dir.name}-work")))
        if BACKEND.on_cluster(redis_url):  # the e2e suite's cluster backend
            settings.setdefault("redis_cluster", "true")
        env = dict(os.environ)
        env.update({f"RUNPLANE_{k.upper()}": v for k, v in settings.items()})
        env.update(
            RUNPLANE_REDIS_URL=redis_url,
            RUNPLANE_HOST_ID=host_id,
            RUNPLANE_DATA_DIR=str(data_dir),
        )
        agent = cls(data_dir, host_id, env, prefix)
        agent.start(wait=wait)
        return agent

    @property
    def redis_url(self) -> str:
        return self.env["RUNPLANE_REDIS_URL"]

    def start(self, *, wait: bool = True, timeout_s: float = 30.0) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "runplane", "agent"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_beating(timeout_s)

    def wait_beating(self, timeout_s: float = 30.0) -> None:
        """Until this agent's beat key exists (it beats once it holds its seat)."""
        client: redis.Redis | redis.cluster.RedisCluster
        if self.env.get("RUNPLANE_REDIS_CLUSTER") == "true":
            client = redis.cluster.RedisCluster.from_url(self.redis_url)
        else:
            client = redis.Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"runplane agent exited:\n{self.log()}")
                if client.exists(host_beat_key(self.host_id)):
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"runplane agent not beating:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
