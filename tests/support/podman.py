"""A throwaway Podman serving the Docker Engine API, for tests: started here,
never assumed running (the recipe of ENVIRONMENT.md).

- `podman`, `runc` and a static busybox from Debian (`make system-deps`);
  runc, not crun, which fails on hybrid cgroups.
- A containers.conf (pointed to by CONTAINERS_CONF) with runc, cgroupfs,
  default ulimits, file-based events, and a tmp dir of its own; storage given
  as `--root`/`--runroot` flags (a storage.conf makes every call take ~20 s).
- Podman 4.x with conmon 2.1 never reports an OOM kill: conmon writes its
  `oom` marker into its working directory while Podman looks for it in the
  container's bundle (containers/conmon#504, fixed in Podman 5 by
  containers/podman#21523). `conmon_path` points at a two-line wrapper that
  starts conmon in the bundle, so State.OOMKilled tells the truth.
- The image `local/tiny`: /bin/busybox and its applet links, imported (no
  image can be pulled here).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

IMAGE = "local/tiny"
BUSYBOX = Path("/bin/busybox")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

CONMON_WRAPPER = """#!/bin/sh
# Start conmon in the container's bundle dir (-b), where Podman 4 looks for its oom marker.
prev=""
for arg in "$@"; do
  if [ "$prev" = "-b" ] || [ "$prev" = "--bundle" ]; then cd "$arg" || exit 1; break; fi
  prev="$arg"
done
exec {conmon} "$@"
"""

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp_dir}"
conmon_path = ["{conmon}"]
"""


class PodmanMissing(RuntimeError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"{', '.join(missing)} not found: the docker driver tests run against Podman; "
            "install it with `apt-get install -y podman runc busybox-static` "
            "(or `make system-deps`)"
        )


class PodmanFailed(RuntimeError):
    """podman did not come up; the message carries its output or log tail."""


def _require_binaries() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("podman", "runc", "conmon")}
    missing = [name for name, path in found.items() if path is None]
    if not _static(BUSYBOX):
        missing.append(f"a static {BUSYBOX} (busybox-static)")
    if missing:
        raise PodmanMissing(missing)
    return {name: str(path) for name, path in found.items()}


def _static(binary: Path) -> bool:
    """An executable that needs no shared libraries (the image has no libc)."""
    if not os.access(binary, os.X_OK):
        return False
    done = subprocess.run(["ldd", str(binary)], capture_output=True, check=False)
    return b"not a dynamic executable" in done.stdout + done.stderr


class PodmanService:
    """`podman system service` on a unix socket under `base_dir`, with its own
    storage, tmp dir and config; `url` is what a Docker client connects to."""

    def __init__(self, base_dir: Path, binaries: dict[str, str]) -> None:
        self.base_dir = base_dir
        # Storage stays mounted (overlay) after podman exits: keep it out of
        # pytest's tmp tree, whose clean-up of old runs would trip over a mount.
        self.storage_dir = Path(tempfile.mkdtemp(prefix="runplane-podman-"))
        self._podman = binaries["podman"]
        self._conmon = binaries["conmon"]
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, base_dir: Path) -> PodmanService:
        service = cls(base_dir, _require_binaries())
        service._prepare()
        service.start_service()
        return service

    @property
    def socket_path(self) -> Path:
        return self.base_dir / "podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def events_log(self) -> Path:
        """Where the file events logger keeps the events (replayed by `since`)."""
        return self.storage_dir / "tmp" / "events" / "events.log"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.base_dir / "containers.conf")}

    def cli(self, *args: str, check: bool = True) -> str:
        """Run `podman ARGS` on this service's storage, without the service."""
        command = [self._podman, *self._storage_flags(), *args]
        done = subprocess.run(command, env=self.env, capture_output=True, check=False)
        if check and done.returncode != 0:
            raise PodmanFailed(
                f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')}"
            )
        return done.stdout.decode()

    def start_service(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        log = (self.base_dir / "service.log").open("ab")
        command = [self._podman, *self._storage_flags(), "system", "service", "--time=0", self.url]
        self._process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.base_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        atexit.register(self.close)
        self._wait_ready()

    def kill_service(self) -> None:
        """SIGKILL the API service, as a crash would; containers keep running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.kill_service()
        self.start_service()

    def stop(self) -> None:
        """Stop the API service (SIGTERM, then SIGKILL). Idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)

    def close(self) -> None:
        """Stop the service and every container it left behind; unmount and
        delete the storage. Idempotent."""
        atexit.unregister(self.close)
        self.stop()
        if not self.storage_dir.exists():
            return
        with contextlib.suppress(PodmanFailed, OSError):
            self.cli("rm", "--all", "--force", "--time", "0", check=False)
        for mount in _mounts_under(self.storage_dir):
            subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
        shutil.rmtree(self.storage_dir, ignore_errors=True)

    # -- setting up -----------------------------------------------------------

    def _storage_flags(self) -> list[str]:
        return [
            "--root",
            str(self.storage_dir / "root"),
            "--runroot",
            str(self.storage_dir / "run"),
        ]

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.storage_dir / "tmp").mkdir(exist_ok=True)
        wrapper = self.base_dir / "conmon-in-bundle"
        wrapper.write_text(CONMON_WRAPPER.format(conmon=self._conmon))
        wrapper.chmod(0o755)
        conf = CONTAINERS_CONF.format(tmp_dir=self.storage_dir / "tmp", conmon=wrapper)
        (self.base_dir / "containers.conf").write_text(conf)
        if not self.cli("images", "--quiet", IMAGE, check=False).strip():
            self._import_image()

    def _import_image(self) -> None:
        rootfs = self.base_dir / "rootfs"
        _busybox_rootfs(rootfs)
        archive = self.base_dir / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        self.cli("import", str(archive), IMAGE)
        archive.unlink()
        shutil.rmtree(rootfs)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            if _pings(self.socket_path):
                return
            time.sleep(0.02)
        raise PodmanFailed(
            f"podman system service on {self.url} did not answer within {READY_TIMEOUT_S} s; "
            f"log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.base_dir / "service.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"PodmanService(url={self.url!r})"


def _busybox_rootfs(rootfs: Path) -> None:
    """/bin/busybox and a relative link per applet, a passwd, a web root."""
    for folder in ("bin", "etc", "tmp", "root", "www"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, check=True)
    for applet in applets.stdout.decode().split():
        if applet != "busybox" and "/" not in applet:
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "www" / "index.html").write_text("hello from local/tiny\n")


def _mounts_under(folder: Path) -> list[str]:
    """Mount points below `folder`, deepest first."""
    prefix = f"{folder}/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _pings(path: Path) -> bool:
    """GET /_ping answers OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            return b"OK" in sock.recv(1024)
    except OSError:
        return False


_shared: dict[str, PodmanService] = {}


def shared_service(base_dir: Path) -> PodmanService:
    """One service per test session, whichever tier asks first (contract and
    integration both use it); `close()` at the session's end is idempotent."""
    if "service" not in _shared:
        _shared["service"] = PodmanService.start(base_dir)
    return _shared["service"]
