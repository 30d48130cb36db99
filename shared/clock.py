"""The clock that billing and access both read.

Production uses :class:`SystemClock`. In test mode every process uses a
:class:`RedisTestClock`: real time plus an offset kept in Redis, so one command moves
time for the billing worker *and* for every gateway at once. Each process keeps the
offset in memory and follows moves through a pub/sub channel, so reading the clock
never costs a Redis round trip.

A clock also says through when time passing counts as *the worker awake*
(``awake_through``). A test clock's jump simulates the worker awake all along, as
Stripe's test clocks do: each moment it passes over is lived as of its instant. A move
*with the worker down* (an outage) and real time passing while the worker is stopped are
not: what the worker does late is seen by the outside world when it really happens
(``billing_worker.domain.moments.RealTime``). The system clock simulates nothing.
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

    def awake_through(self) -> datetime | None:
        """The instant up to which time counts as passed with the worker awake, whatever
        the wall clock did (a test clock's jump); None: only the wall clock counts."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()

    def awake_through(self) -> datetime | None:
        return None


class ManualClock:
    """A clock that only moves when told to; for unit tests of time-dependent code.
    ``advance`` passes time with the worker awake, ``outage`` with the worker down."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start
        self._awake: datetime | None = start

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def awake_through(self) -> datetime | None:
        return self._awake

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        self._awake = self._now

    def outage(self, delta: timedelta) -> None:
        """Move time on as if the worker had not been running meanwhile."""
        self._now += delta


# The announcement is "<offset_us>" or "<offset_us> <awake_us>" (``_parse``).
_SET_AND_ANNOUNCE = """
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] == '' then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
end
"""


def _parse(data: str | bytes) -> tuple[int, int | None]:
    text = data.decode() if isinstance(data, bytes) else str(data)
    offset, _, awake = text.partition(" ")
    return int(offset), int(awake) if awake else None


def _instant(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class RedisTestClock:
    """System time plus an offset shared through Redis (test mode only), and the test
    instant through which the worker counts as awake (the end of the latest jump)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._offset_us = 0
        self._awake_us: int | None = None
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

    def awake_through(self) -> datetime | None:
        return _instant(self._awake_us)

    async def refresh(self) -> None:
        raw, awake = await self._client.mget(keys.CLOCK_KEY, keys.CLOCK_AWAKE_KEY)
        self._apply(int(raw) if raw is not None else 0, int(awake) if awake else None)

    def _apply(self, offset_us: int, awake_us: int | None) -> None:
        self._awake_us = awake_us
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

    async def set_offset(self, offset: timedelta, *, awake: bool = True) -> None:
        """Move time for every process sharing this Redis: ``awake``, the worker counts as
        running all along (a jump); otherwise as down while time passed (an outage), so
        what it does late happens, for the outside world, now."""
        offset_us = int(offset / timedelta(microseconds=1))
        awake_us = self._awake_us
        if awake:
            awake_us = int(time.time() * 1_000_000) + offset_us
        # one script, not MULTI: a cluster runs no transaction holding a PUBLISH (both
        # keys share a hash tag)
        await self._client.eval(
            _SET_AND_ANNOUNCE, 2, keys.CLOCK_KEY, keys.CLOCK_AWAKE_KEY,
            offset_us, keys.CLOCK_CHANNEL, "" if awake_us is None else awake_us,
        )  # fmt: skip
        self._apply(offset_us, awake_us)

    async def start(self) -> None:
        await self.refresh()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            follow_channel(
                self._client,
                keys.CLOCK_CHANNEL,
                on_message=lambda data: self._apply(*_parse(data)),
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
