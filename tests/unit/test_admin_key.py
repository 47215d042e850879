"""The admin key file: written on first start, kept while it opens the API, and
written anew when its key was revoked or has expired (the way back from a
lock-out is a restart)."""

from __future__ import annotations

from pathlib import Path

from runplane.bootstrap.admin_key import ensure_admin_key
from runplane.services.api_keys import ApiKeys
from runplane.testing.api_keys import InMemoryApiKeyStore
from tests.support.clock import FakeClock


async def test_the_file_is_written_once_and_kept_while_it_works(tmp_path: Path) -> None:
    keys = ApiKeys(InMemoryApiKeyStore(), FakeClock())
    path = tmp_path / "admin.key"
    await ensure_admin_key(keys, path)
    first = path.read_text()
    await ensure_admin_key(keys, path)
    assert path.read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert await keys.store.count() == 1


async def test_a_revoked_admin_key_in_the_file_is_replaced(tmp_path: Path) -> None:
    keys = ApiKeys(InMemoryApiKeyStore(), FakeClock())
    path = tmp_path / "admin.key"
    await ensure_admin_key(keys, path)
    first = path.read_text().strip()
    stored = await keys.authenticate(first)
    assert stored is not None
    _, other = await keys.issue(team_id=None, admin=True)
    assert (await keys.revoke(stored.key_id)).key is not None
    await ensure_admin_key(keys, path)
    fresh = path.read_text().strip()
    assert fresh != first
    assert await keys.authenticate(fresh) is not None
    assert await keys.authenticate(other) is not None
