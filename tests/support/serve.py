"""A real `runplane serve` in a child process, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port


@dataclass
class Backend:
    """Where the e2e suite's cluster mode sends a launch (tests/e2e/conftest.py
    fills it): a launch on `cluster_url` runs with redis_cluster=true and, unless
    the test names its own database, a fresh PostgreSQL one from `database`."""

    cluster_url: str | None = None
    database: Callable[[], str] | None = None
    by_data_dir: dict[Path, str] = field(default_factory=dict)
    """A data dir keeps its database, as SQLite in it would (restarts, a serve
    launched again on another's data dir)."""

    def on_cluster(self, redis_url: str | None) -> bool:
        return self.cluster_url is not None and redis_url == self.cluster_url

    def apply(self, settings: dict[str, str], data_dir: Path) -> None:
        if not self.on_cluster(settings.get("redis_url")):
            return
        settings.setdefault("redis_cluster", "true")
        if "database_url" not in settings and self.database is not None:
            if data_dir not in self.by_data_dir:
                self.by_data_dir[data_dir] = self.database()
            settings["database_url"] = self.by_data_dir[data_dir]

    def reset(self) -> None:
        self.cluster_url, self.database = None, None
        self.by_data_dir.clear()


BACKEND = Backend()


@dataclass
class RunplaneServer:
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    peers: list[RunplaneServer] = field(default_factory=list)
    """Other instances on the same Redis and database (the cluster backend's
    `serve` fixture adds one): fleet-wide figures sum over self and these."""

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "serve.log"

    @classmethod
    def launch(cls, data_dir: Path, **settings: str) -> RunplaneServer:
        server = cls.prepare(data_dir, **settings)
        server.start()
        return server

    @classmethod
    def prepare(cls, data_dir: Path, **settings: str) -> RunplaneServer:
        """The server `launch` would start, not started yet (`start`, or `spawn`
        then `wait_ready` to start several at once)."""
        port = free_port()
        # Runtimes run as runplane's own user unless a test asks otherwise: the
        # suite's interpreter and tmp dirs live where `nobody` cannot reach.
        settings.setdefault("runtime_user", "")
        # One seat per host id: servers sharing a Redis never contend for one.
        # A restart keeps the env, so the id (and the data dir's seat token).
        settings.setdefault("host_id", f"serve-{port}")
        BACKEND.apply(settings, data_dir)
        env = dict(os.environ)
        env.update({f"RUNPLANE_{k.upper()}": v for k, v in settings.items()})
        env.update(RUNPLANE_DATA_DIR=str(data_dir), RUNPLANE_PORT=str(port))
        env.update(RUNPLANE_URL=f"http://127.0.0.1:{port}")
        env.pop("RUNPLANE_API_KEY", None)
        return cls(data_dir, port, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> None:
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the child without waiting for it to be ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runplane", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait for `/readyz` to answer 200; a child that exits or never gets
        there is an error (and is killed, so it holds no port or CPU)."""
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runplane serve exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # Not left running behind the failed test (it would hold its port and CPU).
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"runplane serve not ready:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> None:
        stop_together([self], sig, timeout_s)

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def client(self, key: str | None = None) -> httpx.Client:
        token = key if key is not None else self.admin_key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "runplane", *args],
            env=self.env | {"COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"runplane {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def cli_json(self, *args: str) -> Any:
        import json

        return json.loads(self.cli(*args, "--json", check=True).stdout)


def stop_together(
    servers: list[RunplaneServer], sig: int = signal.SIGTERM, timeout_s: float = 60.0
) -> None:
    """Signal every server, then wait for each (SIGKILL after `timeout_s`): their
    graceful stops overlap instead of following one another."""
    running = [s.process for s in servers if s.process is not None and s.process.poll() is None]
    for process in running:
        process.send_signal(sig)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
