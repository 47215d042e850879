"""The servers one trial runs on: Redis (AOF), a Postgres cluster and one
`runplane serve`, each started here and stopped, with every runtime process
the trial made, when the trial ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.serve import RunplaneServer

SERVE_SETTINGS = {
    # Short transient bounds and a frequent reconciler, so a runtime a kill left
    # half-way settles within a trial; sleep-like runtimes stop at once.
    "start_timeout_s": "10",
    "stop_timeout_s": "10",
    "reconcile_interval_s": "3",
    "reconcile_jitter_s": "1",
    "health_monitor_interval_s": "2",
    # A job an outage made retry waits this long to be claimed again (default
    # 120 s); well above the longest job here (a 15 s lease wait, then a stop).
    "stream_claim_idle_ms": "30000",
    "log_format": "text",
}
"""The settings every trial's `serve` runs with (RUNPLANE_<NAME>); the rest are defaults."""


@dataclass
class Cluster:
    """Redis + Postgres + one `runplane serve`, for one trial."""

    base_dir: Path
    redis: RedisServer
    postgres: PostgresServer
    serve: RunplaneServer
    database_url: str
    faults: list[float] = field(default_factory=list)
    """monotonic times at which a fault was injected"""

    @classmethod
    def start(cls, base_dir: Path | None = None) -> Cluster:
        base = base_dir or Path(tempfile.mkdtemp(prefix="runplane-faults-"))
        redis_server = RedisServer.start(base / "redis")
        postgres: PostgresServer | None = None
        try:
            postgres = PostgresServer.start(base / "postgres")
            database_url = postgres.create_database("faults")
            serve = RunplaneServer.launch(
                base / "data",
                redis_url=redis_server.url,
                database_url=database_url,
                **SERVE_SETTINGS,
            )
        except BaseException:
            if postgres is not None:
                postgres.stop()
            redis_server.stop()
            raise
        return cls(base, redis_server, postgres, serve, database_url)

    # -- faults -----------------------------------------------------------------

    def kill_serve(self) -> None:
        """SIGKILL `serve` and start it again (same port, so the same consumer name)."""
        self.faults.append(time.monotonic())
        self.serve.stop(signal.SIGKILL)
        self.serve.start(timeout_s=60)

    def restart_redis(self) -> None:
        """SHUTDOWN (AOF fsynced) and start Redis again on its port and files."""
        self.faults.append(time.monotonic())
        self.redis.restart()

    def restart_postgres(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server comes back."""
        self.faults.append(time.monotonic())
        pg = self.postgres
        pg._run(  # the helper's runner: as the postgres user when we are root
            "pg_ctl",
            *("-D", str(pg.data_dir), "-l", str(pg.log_path)),
            *("-m", "fast", "-w", "-t", "60", "restart"),
        )

    # -- access -------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """The database for asyncpg (no SQLAlchemy driver suffix)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://")

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.serve.url,
            headers={"Authorization": f"Bearer {self.serve.admin_key}"},
            timeout=timeout_s,
        )

    @property
    def containers_dir(self) -> Path:
        return self.serve.data_dir / "runtimes" / "containers"

    # -- teardown ---------------------------------------------------------------

    def close(self) -> None:
        """Stop serve, end every runtime process and supervisor it started, stop
        Postgres and Redis. Safe to call twice."""
        self.serve.stop(signal.SIGKILL)
        kill_runtime_processes(self.containers_dir)
        self.postgres.stop()
        self.redis.stop()


def kill_runtime_processes(containers_dir: Path) -> int:
    """SIGKILL every live runtime (its process group) and supervisor named by a
    container's state file; returns how many processes were signalled."""
    killed = 0
    for state_file in containers_dir.glob("*/state.json"):
        state = _read_json(state_file)
        for pid_key, ticks_key, group in (
            ("pid", "start_ticks", True),
            ("supervisor_pid", "supervisor_start_ticks", False),
        ):
            pid, ticks = state.get(pid_key), state.get(ticks_key)
            if isinstance(pid, int) and isinstance(ticks, int) and proc_alive(pid, ticks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    (os.killpg if group else os.kill)(pid, signal.SIGKILL)
                    killed += 1
    return killed


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def proc_start_ticks(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks: field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2 :].split()  # fields 3.. (the name may hold spaces)
    return rest[0], int(rest[19])


def proc_alive(pid: int, start_ticks: int) -> bool:
    """The process `pid` started at `start_ticks` still runs (zombies count as gone)."""
    stat = proc_start_ticks(pid)
    return stat is not None and stat[1] == start_ticks and stat[0] not in ("Z", "X")
