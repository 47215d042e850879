"""Alembic environment. `migrate.upgrade` passes a connection in
`config.attributes["connection"]`; otherwise (Alembic commands such as
autogenerate) an engine is built from `sqlalchemy.url`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.schema import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    database = SqlDatabase.from_url(url)
    try:
        async with database.writing() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await database.dispose()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection and no sqlalchemy.url: use runplane's migrate.upgrade")
    asyncio.run(run_with_own_engine(url))


main()
