"""What the isolation tests share: a work root the runtime user can enter, a
data dir holding a secret, and the script a hostile runtime would run."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUNTIME_USER = "nobody"
NOBODY_UID = pwd.getpwnam(RUNTIME_USER).pw_uid
NOBODY_GID = pwd.getpwnam(RUNTIME_USER).pw_gid
# /bin and /usr/bin tools only: the suite's own interpreter lives under /root.
PROBE_SCRIPT = (
    'echo "uid=$(id -u)"; echo "groups=$(id -G)"; echo "cwd=$(pwd)"; env | sed "s/^/env:/"; '
    'if cat "$1" 2>/dev/null; then echo "secret=read"; else echo "secret=denied"; fi; '
    "echo done; exec sleep 60"
)


@contextmanager
def work_root() -> Iterator[Path]:
    """A fresh work root under /tmp (pytest's tmp dirs are 0700 root's): 0711,
    so the runtime user reaches its own folder in it and lists nothing."""
    path = Path(tempfile.mkdtemp(prefix="rp-work-", dir="/tmp"))
    os.chmod(path, 0o711)
    try:
        yield path / "work"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def hostile_command(secret: Path) -> list[str]:
    return ["/bin/sh", "-c", PROBE_SCRIPT, "sh", str(secret)]


def parse_report(log: str) -> dict[str, str | list[str]]:
    """The script's output: `uid`, `groups`, `cwd`, `secret`, and the env names."""
    report: dict[str, str | list[str]] = {"env": []}
    for line in log.splitlines():
        if line.startswith("env:"):
            names = report["env"]
            assert isinstance(names, list)
            names.append(line[4:].split("=", 1)[0])
        elif "=" in line:
            key, _, value = line.partition("=")
            report[key] = value
    return report
