"""Coalescing Redis calls made in one event-loop turn into one round trip.

:class:`KeyBatcher` puts every key asked for in one turn in one MGET (on a cluster, one
pipeline of GETs: a round trip per node, to every node at once): many concurrent
requests that miss the near-cache cost one round trip between them, and the same key
asked for twice in flight is read once. :class:`ScriptBatcher` does the same for calls
of a Lua script (logins).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from shared.redis_connection import RedisClient, get_many


class KeyBatcher:
    def __init__(self, client: RedisClient, *, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._pending: dict[str, asyncio.Future[bytes | None]] = {}
        self._in_flight: dict[str, asyncio.Future[bytes | None]] = {}
        self._scheduled = False
        self.round_trips = 0

    def get(self, key: str) -> asyncio.Future[bytes | None]:
        future = self._pending.get(key) or self._in_flight.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            if len(self._pending) >= self._max_batch:
                self._flush()
            elif not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self._in_flight.update(batch)
        task = asyncio.get_running_loop().create_task(self._fetch(batch))
        task.add_done_callback(_consume)

    async def _fetch(self, batch: dict[str, asyncio.Future[bytes | None]]) -> None:
        self.round_trips += 1
        try:
            values = await get_many(self._client, list(batch))
        except Exception as exc:  # whatever failed, every waiter hears of it, none hangs
            self._land(batch)
            for future in batch.values():
                if not future.done():
                    future.set_exception(
                        exc if isinstance(exc, RedisError | OSError) else RedisError(repr(exc))
                    )
            return
        self._land(batch)
        for future, value in zip(batch.values(), values, strict=True):
            if future.done():
                continue
            if isinstance(value, Exception):  # that key's node failed (a cluster)
                future.set_exception(value)
            else:
                future.set_result(value if isinstance(value, bytes) or value is None else None)

    def _land(self, batch: dict[str, asyncio.Future[bytes | None]]) -> None:
        for key, future in batch.items():
            if self._in_flight.get(key) is future:
                del self._in_flight[key]


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


#: One script call waiting for its turn: keys, arguments, and the caller's future.
_Call = tuple[list[str], list[object], asyncio.Future[Any]]


class ScriptBatcher:
    """Runs one Lua script for many callers: every call made in one event-loop turn goes
    to Redis in one pipeline (each call still runs atomically on its own).

    Redis-py spends far more time on a command than Redis does; logins under load used
    to pay that once per login. A script Redis does not know (a restart, ``SCRIPT
    FLUSH``) is loaded and the affected calls are sent again.
    """

    def __init__(self, client: RedisClient, source: str, *, max_batch: int = 256) -> None:
        self._client = client
        self._script = client.register_script(source)
        self._max_batch = max_batch
        self._pending: list[_Call] = []
        self._scheduled = False
        self.round_trips = 0

    def call(self, keys: list[str], args: list[object]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(_consume)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            results = await self._send(batch)
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:
                await self._client.script_load(self._script.script)
                retried = await self._send([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except Exception as exc:  # whatever failed, every waiter hears of it, none hangs
            failure = exc if isinstance(exc, RedisError | OSError) else RedisError(repr(exc))
            for _keys, _args, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_keys, _args, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _send(self, batch: list[_Call]) -> list[Any]:
        self.round_trips += 1
        sha = self._script.sha
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args, _future in batch:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)  # type: ignore[arg-type]
            return list(await pipe.execute(raise_on_error=False))
