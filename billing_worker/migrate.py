"""``tollgate db upgrade``: Alembic driven from code, with the scripts shipped in the package."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_worker.db.engine import ensure_sqlite_directory
from shared.settings import SettingsError


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("billing_worker").joinpath("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Run the migrations from inside a running event loop (env.py starts its own)."""
    await asyncio.to_thread(upgrade, database_url, revision)


class NotMigrated(SettingsError):
    """The database has no Tollgate tables, or an older version of them."""


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Refuse, in words, a database ``tollgate db upgrade`` has not brought to head."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        state = "has no Tollgate tables" if current is None else f"is at revision {current}"
        raise NotMigrated(
            f"the database {where} {state} (this Tollgate needs {head}): run "
            "`tollgate db upgrade` (with the same --database-url), or pass the --database-url "
            "of the database `tollgate up` made (by default sqlite:///.tollgate/tollgate.db)"
        )
