"""SqlApiKeyStore: API keys, found by the hash of their secret (never the secret)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, insert, select

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import api_keys, as_row
from runplane.domain.api_keys import ApiKey


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

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.key_hash == key_hash)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else ApiKey(**row)

    async def count(self) -> int:
        async with self._database.reading() as connection:
            total = await connection.scalar(select(func.count()).select_from(api_keys))
        return int(total or 0)
