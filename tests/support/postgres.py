"""A throwaway PostgreSQL cluster for tests: Debian's binaries, started here, never assumed.

initdb refuses to run as root, so when the tests run as root the cluster lives
in a fresh directory owned by `postgres` and every server binary runs through
`runuser -u postgres`. The directory is removed on `stop()`.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")
POSTGRES_USER = "postgres"
START_TIMEOUT_S = 120
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)
"""Durability off: a test cluster lives for one session and is thrown away."""


class PostgresMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            f"no PostgreSQL binaries under {POSTGRES_ROOT}/*/bin: install them with "
            "`apt-get install -y postgresql` (or `make system-deps`)"
        )


class PostgresFailed(RuntimeError):
    """initdb or pg_ctl failed; the message carries their output or the log tail."""


def find_bin_dir() -> Path:
    """The newest Debian PostgreSQL version's bin directory."""
    found = [path.parent for path in POSTGRES_ROOT.glob("*/bin/initdb")]
    numbered = [path for path in found if path.parent.name.isdigit()]
    if not numbered:
        raise PostgresMissing()
    return max(numbered, key=lambda path: int(path.parent.name))


def _as_root() -> bool:
    return os.geteuid() == 0


class PostgresServer:
    """PostgreSQL on 127.0.0.1:`port`, trust auth, superuser `postgres`."""

    def __init__(self, bin_dir: Path, cluster_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.cluster_dir = cluster_dir
        self.port = port
        self.data_dir = cluster_dir / "data"
        self.socket_dir = cluster_dir / "socket"
        self.log_path = cluster_dir / "postgres.log"
        self._running = False

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://{POSTGRES_USER}@127.0.0.1:{self.port}/{name}"

    @classmethod
    def start(cls, base_dir: Path) -> PostgresServer:
        """initdb + pg_ctl start on a free port. `base_dir` (pytest's, often 0700 and
        owned by root) only records where the cluster lives; the cluster itself sits
        in a fresh temporary directory the postgres user owns."""
        bin_dir = find_bin_dir()
        cluster_dir = Path(tempfile.mkdtemp(prefix="runplane-pg-"))
        server = cls(bin_dir, cluster_dir, free_port())
        try:
            server._prepare_dirs()
            server._initdb()
            server._pg_ctl_start()
        except BaseException:
            server.stop()
            raise
        base_dir.mkdir(parents=True, exist_ok=True)
        (base_dir / "cluster_dir").write_text(f"{cluster_dir}\n")
        atexit.register(server.stop)
        return server

    def create_database(self, name: str) -> str:
        """Create an empty database `name`; returns its URL."""
        if not DATABASE_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r} must match {DATABASE_NAME.pattern}")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", POSTGRES_USER, name)
        return self.database_url(name)

    def stop(self) -> None:
        """Stop the server (immediate mode) and remove the cluster. Idempotent."""
        if self._running:
            self._running = False
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def stop_server(self, mode: str = "fast", *, wait: bool = True) -> None:
        """`pg_ctl stop -m <mode>`, keeping the cluster for `start_server()`.
        `smart` without `wait` leaves it shutting down: new connections are
        refused ("the database system is shutting down", SQLSTATE 57P03) until
        the last session ends; a `fast` stop after it ends the sessions."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w" if wait else "-W", "stop")
        self._running = not wait

    def start_server(self) -> None:
        """Start the cluster again after `stop_server()`."""
        self._pg_ctl_start()

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m <mode>`: sessions in flight are ended (`fast`),
        then the server is back on the same port."""
        self.stop_server(mode)
        self.start_server()

    def _prepare_dirs(self) -> None:
        self.socket_dir.mkdir()
        self.log_path.touch()
        if _as_root():
            user = pwd.getpwnam(POSTGRES_USER)
            for path in (self.cluster_dir, self.socket_dir, self.log_path):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _initdb(self) -> None:
        self._run(
            "initdb",
            *("-D", str(self.data_dir), "-U", POSTGRES_USER, "--auth=trust"),
            *("-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
        )

    def _pg_ctl_start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
        try:
            self._run(
                "pg_ctl",
                *("-D", str(self.data_dir), "-l", str(self.log_path)),
                *("-w", "-t", str(START_TIMEOUT_S), "-o", options + SERVER_OPTIONS, "start"),
            )
        except PostgresFailed as exc:
            raise PostgresFailed(f"{exc}\n--- {self.log_path} ---\n{self._log_tail()}") from exc
        self._running = True

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if _as_root():
            command = ["runuser", "-u", POSTGRES_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise PostgresFailed(
                f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
