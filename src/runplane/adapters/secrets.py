"""Secrets encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key file.

The key file (`<data dir>/webhook.key`, mode 0600) is created on first use. It
holds one Fernet key per line: the first encrypts, every one decrypts, so a key
can be rotated by putting a new one on top. Instances sharing a database must
share the key file too."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from runplane.domain.webhooks.model import SecretUnreadable


class SecretBox:
    def __init__(self, key_path: Path) -> None:
        """Reads (or first creates) the key file: a blocking call, meant for start-up."""
        self.key_path = key_path
        keys = [Fernet(key) for key in load_or_create_keys(key_path)]
        self._fernet = MultiFernet(keys)

    def __repr__(self) -> str:
        return f"SecretBox({str(self.key_path)!r})"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Raises SecretUnreadable when no key of the file opens `token`."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable(
                f"a stored secret cannot be decrypted with the keys in {self.key_path}"
            ) from exc


def load_or_create_keys(path: Path) -> list[bytes]:
    """The keys in `path`, creating the file with one new key when it is absent.
    Creation is atomic (written aside, then linked into place), so instances
    starting together all end up with the same key."""
    if not path.exists():
        _create(path)
    lines = [line.strip() for line in path.read_text("ascii").splitlines()]
    keys = [line.encode("ascii") for line in lines if line and not line.startswith("#")]
    if not keys:
        raise ValueError(f"{path} holds no key")
    return keys


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode("ascii") + "\n")
        with contextlib.suppress(FileExistsError):  # another instance won the race
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
