"""The clock that billing and access both read.

Production uses :class:`SystemClock`. In test mode every process uses a
:class:`RedisTestClock`: real time plus an offset kept in Redis, so one command moves
time for the billing worker *and* for every gateway at once. Each process keeps the
offset in memory and follows moves through a pub/sub channel, so reading the clock
never costs a Redis round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared import keys
from shared.pubsub import follow_channel
from shared.redis_connection import RedisClient


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """Current time as UNIX seconds."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; for unit tests of time-dependent code."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def advance(self, delta: timedelta) -> None:
        self._now += delta


_SET_AND_ANNOUNCE = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
"""


class RedisTestClock:
    """System time plus an offset shared through Redis (test mode only)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._offset_us = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def offset(self) -> timedelta:
        return timedelta(microseconds=self._offset_us)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(microseconds=self._offset_us)

    def timestamp(self) -> float:
        return time.time() + self._offset_us / 1_000_000

    async def refresh(self) -> None:
        raw = await self._client.get(keys.CLOCK_KEY)
        self._apply(int(raw) if raw is not None else 0)

    def _apply(self, offset_us: int) -> None:
        if offset_us != self._offset_us:
            self._offset_us = offset_us
            self._changed.set()

    async def wait_changed(self, within: float) -> bool:
        """Wait until the offset moves (or ``within`` seconds pass); True if it moved."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()
        moved = self._changed.is_set()
        self._changed.clear()
        return moved

    async def set_offset(self, offset: timedelta) -> None:
        """Move time for every process sharing this Redis."""
        offset_us = int(offset / timedelta(microseconds=1))
        # one script, not MULTI: a cluster runs no transaction holding a PUBLISH
        await self._client.eval(_SET_AND_ANNOUNCE, 1, keys.CLOCK_KEY, offset_us, keys.CLOCK_CHANNEL)
        self._apply(offset_us)

    async def start(self) -> None:
        await self.refresh()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            follow_channel(
                self._client,
                keys.CLOCK_CHANNEL,
                on_message=lambda data: self._apply(int(data)),
                on_subscribed=self.refresh,  # a move may have come while not listening
                stop=self._stop,
            ),
            name="test-clock-follower",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._stop.set()
            await self._task
            self._task = None
