"""The admin key file `serve` writes to `<data dir>/admin.key` on first start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from runplane.domain.api_keys import ApiKeyRejected
from runplane.services.api_keys import ApiKeys

logger = logging.getLogger(__name__)


async def ensure_admin_key(keys: ApiKeys, path: Path) -> None:
    """On first start, write an admin key to `<data dir>/admin.key` (mode 0600);
    write a new one if the stored key no longer opens this database (unknown,
    revoked or expired): restarting serve is the way back from a lock-out."""
    stored = _read_key(path)
    try:
        if stored and await keys.authenticate(stored) is not None:
            return
    except ApiKeyRejected:  # revoked or expired: the file must open the API again
        logger.warning("the admin key file holds a revoked or expired key: writing a new one")
    _, plaintext = await keys.issue(team_id=None, admin=True, name="bootstrap admin")
    _write_key(path, plaintext)
    logger.info("admin key written", extra={"path": str(path)})


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_key(path: Path, plaintext: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(plaintext + "\n")
    tmp.replace(path)
