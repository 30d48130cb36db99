"""Engine and session factory; turns the user's database URL into an async one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.util.concurrency import await_only, in_greenlet

from billing_worker.db import deadline
from billing_worker.db.unit_of_work import WorkerSession

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


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database, or one in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


def ensure_sqlite_directory(url: str) -> None:
    """A SQLite file's directory is made if missing (``.tollgate/`` on a fresh checkout)."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def json_text(value: object) -> str:
    """A JSON column's text: orjson's, several times faster than the standard library's
    on the audit rows, events and entitlements an invoice run writes for every account."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(url: str, *, echo: bool = False, foreign_keys: bool = True) -> AsyncEngine:
    """An async engine; on SQLite, WAL with write-locking transactions.

    ``foreign_keys=False`` is for migrations only: SQLite rebuilds a table to alter it,
    which its foreign key checks would refuse while other tables reference it.
    """
    # hide_parameters: statements are logged (echo, DEBUG) and put in errors without their
    # values, which may be key hashes, webhook secrets or customers' details.
    ensure_sqlite_directory(url)
    engine = create_async_engine(
        async_url(url),
        echo=echo,
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )
    if engine.dialect.name == "sqlite":
        event.listen(
            engine.sync_engine, "connect", _sqlite_connect if foreign_keys else _sqlite_connect_raw
        )
        turns = _WriteTurns()
        event.listen(engine.sync_engine, "begin", turns.begin)
        for name in ("commit", "rollback"):
            event.listen(engine.sync_engine, name, turns.end)
        event.listen(engine.sync_engine.pool, "checkin", turns.checked_in)
    else:
        event.listen(engine.sync_engine, "begin", _postgres_limits)
    return engine


def _postgres_limits(connection: Connection) -> None:
    """Inside a request's time limit, a transaction waits for locks and runs statements at
    most what is left of it (``SET LOCAL``: for this transaction only)."""
    left = deadline.remaining()
    if left is not None:
        ms = max(1, int(left * 1000))
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")


def _sqlite_connect_raw(dbapi_connection: Any, _record: object) -> None:
    _sqlite_connect(dbapi_connection, _record, foreign_keys=False)


def _sqlite_connect(dbapi_connection: Any, _record: object, *, foreign_keys: bool = True) -> None:
    # Let SQLAlchemy, not the driver, decide when a transaction begins (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")  # other processes (the CLI) only
    cursor.close()


class _WriteTurns:
    """SQLite has one writer at a time: the process's write transactions take turns.

    Every transaction begins IMMEDIATE -- a deferred one that reads and then writes cannot
    upgrade if another writer committed in between (SQLITE_BUSY whatever the busy
    timeout) -- except one that says it only reads (execution option ``read_only``): in
    WAL mode it needs no lock and does not queue with the writers.

    Waiting for SQLite's lock is a busy loop bounded by ``busy_timeout``: under load (a
    long catch-up, an invoice run, the API and four jobs at once) a writer could wait past
    it and fail with "database is locked". So within the process the writers queue on an
    asyncio lock first, in arrival order and without a time limit short enough to fail
    an ordinary request; ``busy_timeout`` is left for other processes (the CLI).
    """

    #: A write transaction that waits longer than this for its turn fails (a defect: a
    #: transaction that never ends, or one opened inside another in the same task).
    WAIT = 120.0

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._holders: dict[asyncio.AbstractEventLoop, object] = {}

    def begin(self, connection: Connection) -> None:
        if connection.get_execution_options().get("read_only", False):
            connection.exec_driver_sql("BEGIN")
            return
        if in_greenlet():
            loop = asyncio.get_running_loop()
            lock = self._locks.setdefault(loop, asyncio.Lock())
            left = deadline.remaining()
            try:
                await_only(asyncio.wait_for(lock.acquire(), min(self.WAIT, left or self.WAIT)))
            except TimeoutError:
                if left is None:
                    raise
                raise deadline.TooLong from None  # a request's limit: nothing was written
            self._holders[loop] = connection.connection.dbapi_connection
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._release(connection.connection.dbapi_connection)
            raise

    def end(self, connection: Connection) -> None:
        self._release(connection.connection.dbapi_connection)

    def checked_in(self, dbapi_connection: object, _record: object) -> None:
        self._release(dbapi_connection)  # a connection returned mid-transaction

    def _release(self, dbapi_connection: object) -> None:
        for loop, holder in list(self._holders.items()):
            if holder is dbapi_connection:
                del self._holders[loop]
                self._locks[loop].release()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=WorkerSession)
