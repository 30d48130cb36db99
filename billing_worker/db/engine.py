"""Engine and session factory; turns the user's database URL into an async one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class DatabaseUrlError(ValueError):
    """The database URL names an unsupported backend."""


def async_url(url: str) -> str:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``; ``postgresql://`` -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseUrlError(f"unsupported database {backend!r}: use sqlite or postgresql")
    driver = _ASYNC_DRIVERS[backend]
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: str, *, echo: bool = False, foreign_keys: bool = True) -> AsyncEngine:
    """An async engine; on SQLite, WAL with write-locking transactions.

    ``foreign_keys=False`` is for migrations only: SQLite rebuilds a table to alter it,
    which its foreign key checks would refuse while other tables reference it.
    """
    # hide_parameters: statements are logged (echo, DEBUG) and put in errors without their
    # values, which may be key hashes, webhook secrets or customers' details.
    engine = create_async_engine(
        async_url(url), echo=echo, pool_pre_ping=True, hide_parameters=True
    )
    if engine.dialect.name == "sqlite":
        event.listen(
            engine.sync_engine, "connect", _sqlite_connect if foreign_keys else _sqlite_connect_raw
        )
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect_raw(dbapi_connection: Any, _record: object) -> None:
    _sqlite_connect(dbapi_connection, _record, foreign_keys=False)


def _sqlite_connect(dbapi_connection: Any, _record: object, *, foreign_keys: bool = True) -> None:
    # Let SQLAlchemy, not the driver, decide when a transaction begins (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Take SQLite's write lock at BEGIN.

    A deferred transaction that reads and then writes cannot upgrade if another writer
    committed in between (SQLITE_BUSY, whatever the busy timeout); the worker's jobs and
    the API write concurrently, so every transaction begins IMMEDIATE and waits its turn --
    except one that says it only reads (execution option ``read_only``): in WAL mode it
    needs no lock, and does not queue with the writers.
    """
    read_only = connection.get_execution_options().get("read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
