"""SqlApiKeyStore: API keys, found by the hash of their secret (never the secret)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import api_keys, as_row
from runplane.domain.api_keys import ApiKey, ApiKeyPage, KeyState, Revocation, RevokeOutcome


class SqlApiKeyStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, key: ApiKey) -> None:
        """Raises ValueError when the key's id or hash is already stored."""
        try:
            async with self._database.writing() as connection:
                await connection.execute(insert(api_keys).values(**as_row(key)))
        except sa_exc.IntegrityError as exc:
            raise ValueError(f"api key {key.key_id!r} (or its hash) already exists") from exc

    async def get(self, key_id: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.key_id == key_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else ApiKey(**row)

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.key_hash == key_hash)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else ApiKey(**row)

    async def list(
        self, *, team_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> ApiKeyPage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = select(api_keys).order_by(api_keys.c.key_id).limit(limit + 1)
        if team_id is not None:
            query = query.where(api_keys.c.team_id == team_id)
        if after is not None:
            query = query.where(api_keys.c.key_id > after)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        keys = [ApiKey(**row) for row in rows[:limit]]
        return ApiKeyPage(keys, keys[-1].key_id if len(rows) > limit else None)

    async def revoke(self, key_id: str, at: datetime) -> Revocation:
        async with self._database.writing() as connection:
            admins = await _lock_admin_keys(connection)
            query = select(api_keys).where(api_keys.c.key_id == key_id).with_for_update()
            row = (await connection.execute(query)).mappings().first()
            if row is None:
                return Revocation(RevokeOutcome.NOT_FOUND, None)
            key = ApiKey(**row)
            if key.revoked_at is not None:
                return Revocation(RevokeOutcome.ALREADY_REVOKED, key)
            others = (a for a in admins if a.key_id != key_id)
            if key.admin and not any(a.state(at) is KeyState.ACTIVE for a in others):
                return Revocation(RevokeOutcome.LAST_ADMIN_KEY, key)
            await connection.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=at)
            )
        return Revocation(RevokeOutcome.REVOKED, ApiKey(**{**row, "revoked_at": at}))

    async def count(self) -> int:
        async with self._database.reading() as connection:
            total = await connection.scalar(select(func.count()).select_from(api_keys))
        return int(total or 0)


async def _lock_admin_keys(connection: AsyncConnection) -> list[ApiKey]:
    """Every admin row, locked in key_id order before anything else (Postgres;
    SQLite has one writer at a time): two revocations racing for the last two
    admin keys cannot both pass the check, and, taking their locks in one
    order, cannot deadlock."""
    query = (
        select(api_keys)
        .where(api_keys.c.admin.is_(True))
        .order_by(api_keys.c.key_id)
        .with_for_update()
    )
    return [ApiKey(**row) for row in (await connection.execute(query)).mappings().all()]
