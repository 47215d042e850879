"""Schema migrations: Alembic's `upgrade head`, run in code on SQLite or Postgres.

No alembic.ini is needed: the Config is built here, with `script_location`
pointing at the `migrations` folder shipped inside the package."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from runplane.adapters.sql.engine import SqlDatabase, database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
POSTGRES_MIGRATION_LOCK = 7_246_815_501
"""Advisory-lock key: instances starting together on one Postgres migrate in turn."""


def alembic_config(url: str | URL | None = None) -> Config:
    """The Alembic Config for runplane's migrations (`url` only for the Alembic CLI
    commands that open their own connection, such as autogenerate)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = database_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (default: the newest schema)."""
    database = SqlDatabase.from_url(url)
    try:
        await upgrade_database(database, revision)
    finally:
        await database.dispose()


def upgrade_sync(url: str | URL, revision: str = "head") -> None:
    """`upgrade` for callers outside an event loop (the CLI)."""
    asyncio.run(upgrade(url, revision))


async def upgrade_database(database: SqlDatabase, revision: str = "head") -> None:
    """`upgrade` over an existing SqlDatabase, in one transaction."""
    config = alembic_config()
    async with database.writing() as connection:
        if database.backend == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await connection.execute(lock, {"key": POSTGRES_MIGRATION_LOCK})
        await connection.run_sync(_run_upgrade, config, revision)


def _run_upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
