"""SecretBox: the key file is created once (0600), reused, rotatable, and a
secret from another key is reported, never mistaken."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from runplane.adapters.secrets import SecretBox
from runplane.domain.webhooks.model import SecretUnreadable


def test_secrets_round_trip_and_are_not_stored_in_clear(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "webhook.key")
    token = box.encrypt("whsec_abc")
    assert "whsec_abc" not in token
    assert box.decrypt(token) == "whsec_abc"


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "webhook.key"
    token = SecretBox(path).encrypt("s")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox(path).decrypt(token) == "s"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_secret_from_another_key_is_unreadable(tmp_path: Path) -> None:
    token = SecretBox(tmp_path / "a.key").encrypt("s")
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        SecretBox(tmp_path / "b.key").decrypt(token)


def test_a_new_key_on_top_encrypts_and_old_secrets_still_open(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    old = SecretBox(path).encrypt("old")
    path.write_text(Fernet.generate_key().decode() + "\n" + path.read_text())
    rotated = SecretBox(path)
    assert rotated.decrypt(old) == "old"
    new = rotated.encrypt("new")
    path.write_text(path.read_text().splitlines()[0] + "\n")  # only the new key left
    assert SecretBox(path).decrypt(new) == "new"


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    path.write_text("# no keys\n")
    with pytest.raises(ValueError, match="holds no key"):
        SecretBox(path)
