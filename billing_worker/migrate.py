"""``tollgate db upgrade``: Alembic driven from code, with the scripts shipped in the package."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("billing_worker").joinpath("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Run the migrations from inside a running event loop (env.py starts its own)."""
    await asyncio.to_thread(upgrade, database_url, revision)
