"""One Redis URL for a single server or a Redis Cluster, and the few operations that
differ between them.

``TOLLGATE_REDIS_URL`` is either a plain ``redis://`` (``rediss://``, ``unix://``) URL, or
``redis+cluster://[user:password@]host:port,host:port,…`` (``rediss+cluster://`` for TLS)
naming any nodes of a cluster; the client learns the rest from them. Every key one Lua
script or one session's work touches carries the account's hash tag (``shared.keys``), so
on a cluster each such call lands in one slot. What spans accounts goes through the
helpers here: reads batched per node (a pipeline, one round trip per node, sent
concurrently), scans over every primary, and compare-and-sets grouped by slot.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.cluster import ClusterNode as SyncClusterNode
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisError

#: The asynchronous client every Tollgate process uses: one server or a cluster.
RedisClient = aioredis.Redis | RedisCluster
#: A non-transactional pipeline of either.
RedisPipeline = Pipeline | ClusterPipeline
#: The same for the few synchronous callers (``tollgate up``'s checks).
SyncRedisClient = redis.Redis | SyncRedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
T = TypeVar("T")


class RedisUrlError(ValueError):
    """The URL names no server, or names one wrongly."""


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The nodes and connection options a ``redis+cluster://`` URL names."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    rest = rest.split("/", 1)[0]  # a cluster has one database: a path is ignored
    options: dict[str, Any] = {"ssl": scheme.lower() == "rediss+cluster"}
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        username, _, password = userinfo.partition(":")
        if username:
            options["username"] = unquote(username)
        if password:
            options["password"] = unquote(password)
    nodes: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "6379")
        try:
            nodes.append((host.strip("[]") or "127.0.0.1", int(port)))
        except ValueError:
            raise RedisUrlError(f"{part!r} in the cluster URL is not host:port") from None
    if not nodes:
        raise RedisUrlError("a redis+cluster:// URL names at least one host:port")
    for name, value in parse_qsl(query):
        options[name] = value
    return nodes, options


def connect(url: str, **options: Any) -> RedisClient:
    """An asynchronous client for ``url``; ``options`` go to the client's constructor."""
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, **options)
    nodes, from_url = cluster_nodes(url)
    options.pop("health_check_interval", None)  # a cluster checks its nodes itself
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        **from_url,
        **options,
    )


async def ready(client: RedisClient) -> None:
    """Learn a cluster's layout now (a cluster client otherwise learns it on its first
    command, and its pub/sub needs it before): nothing to do on a single server."""
    if isinstance(client, RedisCluster):
        await client.initialize()


def connect_sync(url: str, **options: Any) -> SyncRedisClient:
    """A synchronous client for ``url`` (short checks outside the event loop)."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    nodes, from_url = cluster_nodes(url)
    return SyncRedisCluster(
        startup_nodes=[
            SyncClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in nodes
        ],
        **from_url,
        **options,
    )


async def get_many(client: RedisClient, names: Sequence[str]) -> list[bytes | Exception | None]:
    """Values of ``names`` in one round trip: one MGET on a single server; on a cluster, a
    pipeline of GETs per node, sent to every node at once. A node that fails fails only
    its own keys (their places hold the error): a dead master is not everyone's outage."""
    if not isinstance(client, RedisCluster):
        return cast(list[bytes | Exception | None], await client.mget(list(names)))
    await client.initialize()  # at once when it knows the layout; again after a failure
    by_node: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(names):
        node = client.get_node_from_key(name)
        by_node[node.name if node is not None else ""].append(index)

    async def fetch(indices: list[int]) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for index in indices:
                pipe.get(names[index])
            return list(await pipe.execute())

    groups = list(by_node.values())
    answers = await asyncio.gather(*(fetch(g) for g in groups), return_exceptions=True)
    values: list[bytes | Exception | None] = [None] * len(names)
    for indices, answer in zip(groups, answers, strict=True):
        for position, index in enumerate(indices):
            if isinstance(answer, RedisError | OSError):
                values[index] = answer
            elif isinstance(answer, BaseException):
                # whatever else the client raised (redis-py has raised AttributeError on a
                # connection a failover closed): a failed read, never a crash upstream
                values[index] = RedisError(repr(answer))
            else:
                values[index] = answer[position]
    return values


async def scan_batches(
    client: RedisClient, match: str, *, count: int = 1000
) -> AsyncIterator[list[bytes]]:
    """Every key matching ``match``, in batches: on a cluster, from every primary."""
    if isinstance(client, RedisCluster):
        batch: list[bytes] = []
        async for name in client.scan_iter(match=match, count=count):
            batch.append(name if isinstance(name, bytes) else str(name).encode())
            if len(batch) >= count:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    cursor = 0
    while True:
        cursor, found = await client.scan(cursor, match=match, count=count)
        yield [k if isinstance(k, bytes) else k.encode() for k in found]
        if cursor == 0:
            return


def by_slot(entries: Sequence[T], name: Callable[[T], str], client: RedisClient) -> list[list[T]]:
    """``entries`` grouped so a multi-key call on each group is allowed: one group on a
    single server, one per hash slot on a cluster (``name(entry)`` is the entry's key)."""
    if not isinstance(client, RedisCluster):
        return [list(entries)] if entries else []
    groups: dict[int, list[T]] = defaultdict(list)
    for entry in entries:
        groups[key_slot(name(entry).encode())].append(entry)
    return list(groups.values())


async def flush_everything(client: RedisClient) -> None:
    """Empty the database, on every primary of a cluster (tests, ``simulate``, bench)."""
    if isinstance(client, RedisCluster):
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.flushdb()


ScriptCall = tuple[Sequence[str], Sequence[Any]]


async def run_script(
    client: RedisClient, source: str, sha: str, calls: Sequence[ScriptCall]
) -> list[Any]:
    """Run one Lua script for many ``(keys, args)`` calls in one pipeline (each call
    atomic on its own, in its keys' slot). A script Redis does not know (a restart, a
    promoted replica, ``SCRIPT FLUSH``) is loaded everywhere and the calls sent again.
    Errors raise; the results come in the calls' order."""
    for attempt in (1, 2):
        async with client.pipeline(transaction=False) as pipe:
            for names, args in calls:
                # (a cluster pipeline refuses evalsha by name, not the command itself)
                pipe.execute_command("EVALSHA", sha, len(names), *names, *args)
            results = list(await pipe.execute(raise_on_error=False))
        if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
            await client.script_load(source)
            continue
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
    raise AssertionError("unreachable")


async def keys_per_node(client: RedisClient) -> dict[str, int]:
    """How many keys each primary holds (``host:port`` → count): one entry on a single
    server. Shows how evenly a population spreads across a cluster."""
    if not isinstance(client, RedisCluster):
        return {"single": int(await client.dbsize())}
    await client.initialize()
    counts: dict[str, int] = {}
    for node in client.get_primaries():
        counts[node.name] = int(await client.execute_command("DBSIZE", target_nodes=node))
    return counts
