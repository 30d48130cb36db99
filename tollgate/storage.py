"""The SQL database, Redis and clock of one-shot commands (``cache rebuild``, ``seed``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db import sealed
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.migrate import NotMigrated, ensure_migrated
from shared import redis_connection
from shared.clock import Clock, RedisTestClock, SystemClock
from shared.redis_connection import RedisClient
from shared.settings import DEFAULT_DATABASE_URL, Env


@dataclass(frozen=True, slots=True)
class Storage:
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    clock: Clock


def database_url() -> str:
    return Env(os.environ).text("DATABASE_URL", DEFAULT_DATABASE_URL)


@contextlib.asynccontextmanager
async def storage() -> AsyncIterator[Storage]:
    """From ``TOLLGATE_DATABASE_URL``, ``TOLLGATE_REDIS_URL`` and ``TOLLGATE_TEST_MODE``."""
    env = Env(os.environ)
    sealed.configure(env.optional("SECRETS_KEY"))  # the worker's key, to read what it sealed
    engine = create_engine(database_url())
    try:
        await ensure_migrated(engine)
    except NotMigrated:
        await engine.dispose()
        raise
    client = redis_connection.connect(env.text("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        clock: Clock = SystemClock()
        if env.flag("TEST_MODE"):
            test_clock = RedisTestClock(client)
            await test_clock.refresh()
            clock = test_clock
        yield Storage(session_factory(engine), client, clock)
    finally:
        await client.aclose()
        await engine.dispose()
