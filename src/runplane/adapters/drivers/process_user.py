"""Who a process runtime (and its exec probes) runs as, where, and with what
environment: the runtime sandbox.

- User: `runtime_user` when runplane runs as root (supplementary groups
  dropped); runplane's own user when it does not (it cannot switch), or when
  the setting is "" (development, tests).
- Working directory: `<work root>/<runtime_id>`, mode 0700, owned by that user.
  The work root sits outside the data dir, which is 0700: the runtime user
  could not enter it. A relative spec `cwd` is resolved inside the work dir
  and may not leave it (symlinks included), and created at start if missing;
  an absolute one is taken as given.
- Environment: a fixed minimal one plus the spec's `env`; nothing of runplane's.
"""

from __future__ import annotations

import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runplane.domain.errors import DriverError

logger = logging.getLogger(__name__)

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
WORK_ROOT_MODE = 0o711
"""Others may traverse the root (to reach their own dir), not list it."""
WORK_DIR_MODE = 0o700
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class RuntimeUser:
    name: str
    uid: int
    gid: int
    switch: bool
    """True when runplane (root) changes to this user in the child."""


def resolve_runtime_user(name: str) -> RuntimeUser:
    """The user runtimes run as, for the `runtime_user` setting `name`.
    DriverError when runplane is root and `name` names no user."""
    own = os.geteuid()
    if own == 0 and name:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise DriverError(f"runtime_user {name!r} is not a user on this host") from None
        return RuntimeUser(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=entry.pw_uid != 0)
    own_name = _user_name(own)
    if name and name != own_name and name not in _warned:
        _warned.add(name)
        logger.warning(
            "runplane is not root and cannot switch users: runtimes run as its own user",
            extra={"runtime_user": name, "user": own_name},
        )
    return RuntimeUser(own_name, own, os.getegid(), switch=False)


def runtimes_run_as_root(name: str) -> bool:
    """Whether runtimes started under `runtime_user` = `name` run as uid 0."""
    return resolve_runtime_user(name).uid == 0


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@dataclass(frozen=True, slots=True)
class RuntimeSandbox:
    user: RuntimeUser
    work_root: Path

    @classmethod
    def of(cls, runtime_user: str, work_root: Path) -> RuntimeSandbox:
        return cls(resolve_runtime_user(runtime_user), Path(work_root).resolve())

    def work_dir(self, runtime_id: str) -> Path:
        # Runtime ids start with a letter or digit and hold no '/', but this
        # path is ours to keep inside the root whatever a caller passes.
        if not runtime_id or "/" in runtime_id or runtime_id in {".", ".."}:
            raise DriverError(f"runtime id {runtime_id!r} cannot name a working directory")
        return self.work_root / runtime_id

    def prepare(self, runtime_id: str) -> Path:
        """Create (or take over) the runtime's work dir; return it. Blocking."""
        self.work_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_root, WORK_ROOT_MODE)
        path = self.work_dir(runtime_id)
        try:
            path.mkdir(mode=WORK_DIR_MODE)
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise DriverError(f"{path} is not a directory") from None
        os.chmod(path, WORK_DIR_MODE, follow_symlinks=False)
        if self.user.switch:
            os.chown(path, self.user.uid, self.user.gid, follow_symlinks=False)
        return path

    def cwd(self, runtime_id: str, spec_cwd: str | None, *, create: bool = False) -> str:
        """The runtime's working directory: its work dir, a relative `spec_cwd`
        inside it (created, the runtime user's, when `create`), or an absolute
        `spec_cwd` as given."""
        path = resolve_cwd(self.work_dir(runtime_id), spec_cwd)
        if create and spec_cwd and not os.path.isabs(spec_cwd):
            self._make_inside(path)
        return path

    def _make_inside(self, path: str) -> None:
        """Create the folders of `path` (already resolved inside a work dir)
        that are missing, as Docker does a WORKDIR."""
        missing = []
        while not os.path.lexists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for folder in reversed(missing):
            os.mkdir(folder, WORK_DIR_MODE)
            if self.user.switch:
                os.chown(folder, self.user.uid, self.user.gid, follow_symlinks=False)

    def env(self, runtime_id: str, spec_env: dict[str, str]) -> dict[str, str]:
        return clean_env(self.user.name, self.work_dir(runtime_id), spec_env)

    def credentials(self) -> dict[str, Any]:
        """subprocess.Popen keywords that switch to the runtime user, if any."""
        if not self.user.switch:
            return {}
        return {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}


def resolve_cwd(work_dir: Path, spec_cwd: str | None) -> str:
    """`work_dir` itself, `spec_cwd` if absolute, else `spec_cwd` inside
    `work_dir`; DriverError if a relative one leads out of it (`..` or a
    symlink the runtime left there)."""
    if not spec_cwd:
        return str(work_dir)
    if os.path.isabs(spec_cwd):
        return spec_cwd
    root = os.path.realpath(work_dir)
    resolved = os.path.realpath(os.path.join(root, spec_cwd))
    if resolved != root and not resolved.startswith(root + os.sep):
        raise DriverError(f"cwd {spec_cwd!r} leads out of the runtime's working directory")
    return resolved


def clean_env(user: str, home: Path, spec_env: dict[str, str]) -> dict[str, str]:
    """The runtime's whole environment: a fixed base, then the spec's `env`."""
    base = {"PATH": CLEAN_PATH, "HOME": str(home), "USER": user, "LOGNAME": user}
    return base | {"LANG": "C.UTF-8"} | spec_env
