"""How the worker's background jobs run: a step repeated while it finds work, then a wait
for the next interval, cut short by a wake-up or (for jobs that follow it) the test clock.

Jobs look for work with ``has_rows``, a read that takes no write lock: on SQLite every
writing transaction begins IMMEDIATE (see ``db.engine``), and idle jobs polling with writing
transactions would queue behind, and in front of, the API's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock, RedisTestClock

log = logging.getLogger(__name__)


async def has_rows(
    sessions: async_sessionmaker[AsyncSession], *conditions: ColumnElement[bool]
) -> bool:
    """Whether any row meets ``conditions``, read without taking a write lock."""
    async with sessions() as session:
        await session.connection(execution_options={"read_only": True})
        return bool(await session.scalar(select(exists().where(*conditions))))


async def idle(clock: Clock | None, interval: float, wake: asyncio.Event | None = None) -> None:
    """Return after ``interval`` seconds, or sooner when ``wake`` is set or ``clock`` (a
    test clock) moves. Jobs whose work ``/v1/test/settle`` does itself pass no clock, so a
    simulation's clock moves do not wake them all at once."""
    waits: list[asyncio.Task[Any]] = []
    if wake is not None:
        waits.append(asyncio.create_task(wake.wait()))
    if isinstance(clock, RedisTestClock):
        waits.append(asyncio.create_task(clock.wait_changed(interval)))
    if not waits:
        await asyncio.sleep(interval)
        return
    _done, pending = await asyncio.wait(
        waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def repeat(
    name: str,
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    interval: float,
    clock: Clock | None = None,
    wake: asyncio.Event | None = None,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Run ``step`` until it reports no work (calling ``on_change`` after each that did),
    then wait; until ``stop``. An error is logged and the step retried later: a job
    isolates its units of work (``billing_worker.parking``), so what reaches here is the
    infrastructure's, or a defect, and neither may stop the worker."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            while await step():
                if on_change is not None:
                    on_change()
                if stop.is_set():
                    return
        except Exception as exc:
            report(name, exc)
        await idle(clock, interval, wake)


def report(job: str, exc: Exception) -> None:
    """Log a job's failed step: briefly when the database, Redis or the network failed,
    with the traceback otherwise."""
    if isinstance(exc, SQLAlchemyError | RedisError | OSError):
        log.warning("%s.failed: %s", job, exc)
    else:
        log.error("%s.failed", job, exc_info=exc)
