"""Shared fixtures: a private redis-server, and the databases the suite runs on.

The suite always runs on SQLite; set ``TOLLGATE_TEST_POSTGRES_URL`` (as ``.ci/run`` does)
and every database test runs on PostgreSQL too; ``TOLLGATE_LONG_TESTS=1`` adds the long
variants.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg

# Imported here, at a shallow stack: the hypothesis plugin otherwise imports it at session
# end through pytest's assertion rewriter, which CPython 3.11.7's parser can crash on.
import hypothesis  # noqa: F401
import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billing_worker.db.engine import create_engine
from billing_worker.migrate import upgrade
from shared import redis_connection
from tollgate.redis_server import RedisClusterProcesses, free_port, start_redis


def _own_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker process gets a PostgreSQL database of its own (the
    given one's name with the worker's, e.g. ``test_gw0``), created when missing."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if url is None or not worker:
        return url
    given = make_url(url)
    own = f"{given.database}_{worker}"

    async def create() -> None:
        admin = await asyncpg.connect(
            given.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", own):
                await admin.execute(f'CREATE DATABASE "{own}"')
        finally:
            await admin.close()

    asyncio.run(create())
    return given.set(database=own).render_as_string(hide_password=False)


POSTGRES_URL = _own_database(os.environ.get("TOLLGATE_TEST_POSTGRES_URL"))
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
#: The long variants (``@pytest.mark.long``) run only when asked, as ``.ci/run`` does.
LONG_TESTS = os.environ.get("TOLLGATE_LONG_TESTS") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if LONG_TESTS:
        return
    skip = pytest.mark.skip(reason="a long variant: set TOLLGATE_LONG_TESTS=1 to run it")
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the suite's own, on a free port."""
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The suite's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _reset_postgres(url: str) -> None:
    async def reset() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


class _Migrated:
    """Migrating a fresh database costs about a second; the suite does it once per backend
    and gives each test an empty copy: a copy of a migrated SQLite file, or the PostgreSQL
    database with every table emptied (``TRUNCATE``)."""

    def __init__(self) -> None:
        self.sqlite_template: Path | None = None
        self.postgres_migrated = False

    def sqlite(self, tmp_path: Path, template_dir: Path) -> str:
        if self.sqlite_template is None:
            template = template_dir / "template.db"
            upgrade(f"sqlite:///{template}")
            self.sqlite_template = template
        target = tmp_path / "tollgate.db"
        shutil.copyfile(self.sqlite_template, target)
        return f"sqlite:///{target}"

    def postgres(self, url: str) -> str:
        if not self.postgres_migrated:
            _reset_postgres(url)
            upgrade(url)
            self.postgres_migrated = True
        else:
            _empty_postgres(url)
        return url


MIGRATED = _Migrated()


def _empty_postgres(url: str) -> None:
    async def empty() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            tables = (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            listed = ", ".join(f'"{name}"' for name in tables)
            if listed:
                await connection.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(empty())


@pytest.fixture(params=BACKENDS)
def blank_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database without any schema: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tollgate.db'}"
    assert POSTGRES_URL is not None
    _reset_postgres(POSTGRES_URL)
    MIGRATED.postgres_migrated = False  # its schema is gone: the next test migrates again
    return POSTGRES_URL


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated, empty database: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        return MIGRATED.sqlite(tmp_path, tmp_path_factory.getbasetemp())
    assert POSTGRES_URL is not None
    return MIGRATED.postgres(POSTGRES_URL)


class OwnRedis:
    """A redis-server only this test uses, so it can be stopped, paused and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self.process = start_redis(self.port, workdir)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=5)

    def start(self) -> None:
        self.process = start_redis(self.port, self._workdir)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "own-redis")
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of the suite's own: 3 masters, 3 replicas, on loopback."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.close()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterProcesses) -> str:
    """The suite's cluster (``redis+cluster://…``), every primary emptied before each test."""
    redis_cluster.wait_until_ok()
    client = redis_connection.connect_sync(redis_cluster.url)
    try:
        client.flushall(target_nodes="primaries")  # type: ignore[call-arg]
    finally:
        client.close()
    return redis_cluster.url
