"""Following a Redis pub/sub channel until told to stop, surviving disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from shared.redis_connection import RedisClient, ready

log = logging.getLogger(__name__)


async def follow_channel(
    client: RedisClient,
    channel: str,
    *,
    on_message: Callable[[bytes], None],
    on_subscribed: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    poll: float = 0.1,
) -> None:
    """Call ``on_message`` for each message on ``channel`` until ``stop`` is set.

    ``on_subscribed`` runs after every (re)subscription: messages published while we
    were not subscribed are lost, so the caller must resynchronise there. Reads poll
    with a timeout so that stopping never depends on cancelling a blocked read.
    """
    while not stop.is_set():
        try:
            await ready(client)
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                await on_subscribed()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        on_message(data if isinstance(data, bytes) else str(data).encode())
        except (RedisError, OSError) as exc:
            log.warning("pubsub.follow_lost channel=%s error=%s", channel, exc)
            await asyncio.sleep(0.2)
