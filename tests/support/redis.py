"""A throwaway Debian redis-server for tests: started here, never assumed running."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import psutil

from tests.support.ports import free_port

REDIS_SERVER_ENV = "RUNPLANE_TEST_REDIS_SERVER"
DEFAULT_BINARY = "/usr/bin/redis-server"
"""Debian's redis-server (7.x). Never the PyPI package's (5.0.7, no XAUTOCLAIM)."""
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class RedisServerMissing(RuntimeError):
    def __init__(self, binary: str) -> None:
        super().__init__(
            f"redis-server not found at {binary}: install it with "
            f"`apt-get install -y redis-server` or point {REDIS_SERVER_ENV} at one"
        )


class RedisServerFailed(RuntimeError):
    """redis-server did not come up; the message carries its log tail."""


def _binary() -> str:
    binary = os.environ.get(REDIS_SERVER_ENV, DEFAULT_BINARY)
    if not os.access(binary, os.X_OK):
        raise RedisServerMissing(binary)
    return binary


def _call(port: int, command: bytes, timeout_s: float = 1.0) -> bytes:
    """Send one inline command, return the raw reply (b"" when the server hangs up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(1024)


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(process: psutil.Process, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(process):
            return True
        time.sleep(0.01)
    return _gone(process)


class RedisServer:
    """redis-server on 127.0.0.1:`port`, daemonised, files under `base_dir`.

    AOF is on, so `restart()` (same port, same dir) brings the data back: tests
    can restart Redis under a running runplane and check what survives.
    """

    def __init__(self, base_dir: Path, port: int, binary: str, binds: tuple[str, ...] = ()) -> None:
        self.base_dir = base_dir
        self.port = port
        self._binary = binary
        self._binds = binds
        self._process: psutil.Process | None = None

    @classmethod
    def start(cls, base_dir: Path, binds: tuple[str, ...] = ()) -> RedisServer:
        """`binds`: addresses to listen on besides 127.0.0.1 (they must exist)."""
        server = cls(base_dir, free_port(), _binary(), binds)
        server._launch()
        return server

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pidfile(self) -> Path:
        return self.base_dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.base_dir / "redis.log"

    def restart(self) -> None:
        self.stop()
        self._launch()

    def stop(self) -> None:
        """SHUTDOWN (the AOF is fsynced), then SIGKILL if it lingers. Idempotent."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None or _gone(process):
            return
        with contextlib.suppress(OSError):
            _call(self.port, b"SHUTDOWN")
        if not _wait_gone(process, STOP_TIMEOUT_S):
            process.kill()
            _wait_gone(process, STOP_TIMEOUT_S)

    def _launch(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(self._command(), check=True, capture_output=True)
        self._wait_ready()
        self._process = psutil.Process(int(self.pidfile.read_text().strip()))
        atexit.register(self.stop)

    def _command(self) -> list[str]:
        return [
            self._binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1", *self._binds,
            # Extra binds are veth ends on this machine (tests/hosts/netns.py),
            # reachable from its namespaces only: protected mode would refuse them.
            "--protected-mode", "no" if self._binds else "yes",
            "--daemonize", "yes",
            "--dir", str(self.base_dir),
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
        ]  # fmt: skip

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if _call(self.port, b"PING").startswith(b"+PONG") and self.pidfile.exists():
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RedisServerFailed(
            f"redis-server on port {self.port} did not answer PING within "
            f"{READY_TIMEOUT_S} s; log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.pid}, dir={str(self.base_dir)!r})"
