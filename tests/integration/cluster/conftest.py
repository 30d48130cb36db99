"""The tests of this folder run on a Redis Cluster (3 masters, 3 replicas): every Redis
fixture the shared tests use points at the cluster, and the database is the production
one (PostgreSQL when configured, SQLite otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.redis_connection import RedisClient, connect, ready
from tests.conftest import BACKENDS, MIGRATED, POSTGRES_URL


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url


@pytest.fixture
def stack_redis_url(cluster_url: str) -> str:
    return cluster_url


@pytest.fixture
async def redis_client(cluster_url: str) -> AsyncIterator[RedisClient]:
    client = connect(cluster_url)
    await ready(client)
    yield client
    await client.aclose()


@pytest.fixture
def database_url(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    if BACKENDS[-1] == "postgresql" and POSTGRES_URL is not None:
        return MIGRATED.postgres(POSTGRES_URL)
    return MIGRATED.sqlite(tmp_path, tmp_path_factory.getbasetemp())
