"""Coalesces cold reads: every key asked for in one event-loop turn goes in one MGET.

Many concurrent requests that miss the near-cache cost one Redis round trip between
them, and the same key asked for twice in flight is read once.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError


class KeyBatcher:
    def __init__(self, client: aioredis.Redis, *, max_batch: int = 512) -> None:
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
            values = await self._client.mget(list(batch))
        except (RedisError, OSError) as exc:
            self._land(batch)
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        self._land(batch)
        for future, value in zip(batch.values(), values, strict=True):
            if not future.done():
                future.set_result(value if isinstance(value, bytes) or value is None else None)

    def _land(self, batch: dict[str, asyncio.Future[bytes | None]]) -> None:
        for key, future in batch.items():
            if self._in_flight.get(key) is future:
                del self._in_flight[key]


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
