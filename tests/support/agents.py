"""A real `runplane agent` subprocess for tests: its own data dir, one host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from runplane.adapters.drivers.process import ProcessDriver


class AgentProcess:
    """`python -m runplane agent` serving `host_id`; runtimes run as this user."""

    def __init__(self, base_dir: Path, redis_url: str, host_id: str) -> None:
        self.base_dir = base_dir
        self.host_id = host_id
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "agent.log"
        self.env = os.environ | {
            "RUNPLANE_REDIS_URL": redis_url,
            "RUNPLANE_DATA_DIR": str(self.data_dir),
            "RUNPLANE_WORK_DIR": str(base_dir / "work"),
            "RUNPLANE_HOST_ID": host_id,
            "RUNPLANE_RUNTIME_USER": "",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._local: ProcessDriver | None = None

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runplane", "agent"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def local_driver(self) -> ProcessDriver:
        """A driver over the agent's state: to look at what it runs (one, closed
        by `close_local`)."""
        if self._local is None:
            self._local = ProcessDriver(self.data_dir / "runtimes")
        return self._local

    async def close_local(self) -> None:
        """Remove every runtime the agent left, then close the local driver."""
        driver = self.local_driver()
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
        driver.close()
        self._local = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
