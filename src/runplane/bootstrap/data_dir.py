"""The data dir is runplane's alone: mode 0700, and nothing in it readable by
anyone else (the database, admin.key, the embedded Redis files, the runtimes'
state and logs). A data dir left by an older runplane is closed up at start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DATA_DIR_MODE = 0o700


def secure_data_dir(data_dir: Path) -> None:
    """Create `data_dir` (0700) or close an existing one: the dir 0700, and the
    group and other bits off everything in it (symlinks are left alone)."""
    data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(data_dir, DATA_DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            _close(os.path.join(root, name))


def _close(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            os.chmod(path, stat.S_IMODE(mode) & ~0o077)
    except FileNotFoundError:
        pass  # a runtime's file went away meanwhile
