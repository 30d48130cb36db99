"""One late answer from Redis is not yet an outage: the gateway's reader asks once more
before it reports the store unavailable (and the request is answered by the fail policy).

A small TCP relay between the reader and a real redis-server holds back Redis's answers
on command, as a saturated CPU or a short pause would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from gateway.view.batcher import KeyBatcher
from gateway.view.cache import NearCache
from gateway.view.store import LiveReader, StoreUnavailable, connect

TIMEOUT = 0.2


class Relay:
    """Forwards bytes both ways; answers from Redis are held ``hold`` seconds while
    ``late`` answers remain to be held."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.late = 0
        self.hold = 1.0
        self.held = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                if answers and self.late > 0:
                    self.late -= 1
                    self.held += 1
                    await asyncio.sleep(self.hold)
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection(*self.upstream)
        for task in (
            asyncio.create_task(self._pipe(client_r, redis_w, answers=False)),
            asyncio.create_task(self._pipe(redis_r, client_w, answers=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def relayed(redis_url: str) -> AsyncIterator[tuple[Relay, aioredis.Redis]]:
    parts = urlsplit(redis_url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 6379)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}{parts.path}", TIMEOUT)  # as the gateway does
    try:
        yield relay, client
    finally:
        await client.aclose()
        server.close()
        await relay.close()


def _reader(client: aioredis.Redis) -> LiveReader:
    return LiveReader(NearCache(ttl=0.0, max_size=100), KeyBatcher(client))


async def test_one_late_answer_is_asked_again_and_served(
    relayed: tuple[Relay, aioredis.Redis], redis_client: aioredis.Redis
) -> None:
    relay, client = relayed
    await redis_client.set("tg:test:late", b"granted")
    reader = _reader(client)
    relay.late = 1
    assert await reader.read("tg:test:late", bytes) == b"granted"
    assert relay.held == 1  # the first answer was late: the second question was answered
    assert reader.redis_errors == 0


async def test_a_store_late_twice_is_unavailable(
    relayed: tuple[Relay, aioredis.Redis], redis_client: aioredis.Redis
) -> None:
    relay, client = relayed
    await redis_client.set("tg:test:late", b"granted")
    reader = _reader(client)
    relay.late = 2
    with pytest.raises(StoreUnavailable):
        await reader.read("tg:test:late", bytes)
    assert relay.held == 2  # asked twice, no more: the fail policy answers after two timeouts
    assert reader.redis_errors == 1
