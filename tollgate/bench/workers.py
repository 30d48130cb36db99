"""Several `tollgate worker` processes on one PostgreSQL database, working through a month
of renewals together: the fleet, how much work is outstanding, and what the work produced.

A population of paid-up consumer accounts is seeded (most with a card, some of which
decline), the workers are started, then the shared test clock moves a month and every
account falls due at once: a renewal invoice each, a charge where there is a card, a retry
scheduled and a message where it is declined. ``outcome`` summarises what the database
holds afterwards in a form that does not depend on ids or on which worker did what, so a
run of four workers with one killed can be compared with a run of one worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Account, OutboxEntry, PaymentAttempt
from billing_worker.domain.calendar import add_months
from billing_worker.migrate import upgrade
from shared import keys, redis_connection
from shared.clock import RedisTestClock
from tollgate.seed import SeedPlan, seed

#: How long after the midnight its renewal falls due the moved clock stands: the renewal is
#: invoiced, charged and (for a declining card) reminded of; the first retry, a day after
#: the due date, has not come yet.
AFTER_RENEWAL = timedelta(hours=12)


class Fleet:
    """``tollgate worker --no-api`` processes in test mode, each with its own log."""

    def __init__(self, database_url: str, redis_url: str, workdir: Path) -> None:
        self._workdir = workdir
        self._command = [sys.executable, "-m", "tollgate.cli", "worker", "--no-api",
                         "--database-url", database_url, "--redis-url", redis_url]  # fmt: skip
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        self._env.update(
            TOLLGATE_OPERATOR_KEY="tgop_workers_fleet",
            TOLLGATE_TEST_MODE="true",
            TOLLGATE_SCHEDULER_INTERVAL="0.2",
            TOLLGATE_RECONCILE_AFTER="1",  # a killed worker's charge is looked at quickly
            TOLLGATE_LOG_LEVEL="WARNING",
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            self.processes.append(self._spawn(len(self.processes)))

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        with (self._workdir / f"worker{index}.log").open("ab") as log:
            return subprocess.Popen(self._command, env=self._env, stdout=log, stderr=log)

    def kill(self, index: int) -> None:
        """SIGKILL: no cleanup, transactions cut wherever they were."""
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def restart(self, index: int) -> None:
        self.processes[index] = self._spawn(index)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def fleet(database_url: str, redis_url: str, workdir: Path, count: int) -> Iterator[Fleet]:
    workers = Fleet(database_url, redis_url, workdir)
    try:
        workers.start(count)
        yield workers
    finally:
        workers.stop()


async def prepare(
    database_url: str, redis_url: str, accounts: int, *, cards: float = 0.9
) -> timedelta:
    """Migrate, and seed ``accounts`` paid-up consumer accounts: ``cards`` of them (90 %)
    with a card, one card in ten declining; the rest pay by hand. The test clock is left at
    zero (nothing is due); returns how far to move it for every account to have renewed
    once (``AFTER_RENEWAL`` past the renewal)."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    client = redis_connection.connect(redis_url)
    try:
        plan = SeedPlan(
            users=accounts, enterprise_share=0, grace=0, degraded=0, suspended=0,
            cancelled=0, cards=cards, declining_cards=0.1,
        )  # fmt: skip
        now = datetime.now(UTC)
        await seed(session_factory(engine), client, plan, now, progress=False)
        await RedisTestClock(client).set_offset(timedelta(0))
        started = now - timedelta(days=10)  # the day the seed starts paid-up accounts
        # The worker bills by the day: the renewal is due from midnight (UTC) of its date,
        # and the first retry a day after that, whatever the time of day the seed ran.
        renewal_day = add_months(started.date(), 1, started.day)
        renewal = datetime.combine(renewal_day, datetime.min.time(), tzinfo=UTC)
        return renewal - now + AFTER_RENEWAL
    finally:
        await client.aclose()
        await engine.dispose()


async def listening(redis_url: str, count: int, *, within: float = 60) -> None:
    """Until ``count`` workers follow the test clock (they are up and will see it move)."""
    client = redis_connection.connect(redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < within:
            [(_channel, followers)] = await client.pubsub_numsub(keys.CLOCK_CHANNEL)
            if int(followers) >= count:
                return
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise TimeoutError(f"fewer than {count} workers follow the test clock after {within}s")


async def move_clock(redis_url: str, offset: timedelta) -> None:
    """Move the shared test clock: every worker follows at once."""
    client = redis_connection.connect(redis_url)
    try:
        await RedisTestClock(client).set_offset(offset)
    finally:
        await client.aclose()


async def outstanding(database_url: str, offset: timedelta) -> dict[str, int]:
    """What is left to do at the moved clock's now: accounts due, collections due, charges
    not yet settled, records not yet published."""
    now = datetime.now(UTC) + offset
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            due = await session.scalar(
                select(func.count()).where(Account.next_evaluation_at <= now)
            )
            collect = await session.scalar(select(func.count()).where(Account.collect_at <= now))
            charging = await session.scalar(
                select(func.count()).where(PaymentAttempt.status.in_(("pending", "unknown")))
            )
            unpublished = await session.scalar(select(func.count()).select_from(OutboxEntry))
        return {
            "due": due or 0,
            "collect": collect or 0,
            "charging": charging or 0,
            "unpublished": unpublished or 0,
        }
    finally:
        await engine.dispose()


_RENEWED = (
    "SELECT count(*) FROM (SELECT account_id FROM invoices GROUP BY account_id "
    "HAVING count(*) > 1) AS renewed"
)


async def renewed(database_url: str) -> int:
    """Accounts with more than their seeded invoice: how far the month's work has got."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalar(
                text(
                    "SELECT count(*) FROM (SELECT account_id FROM invoices GROUP BY account_id "
                    "HAVING count(*) > 1) AS renewed"
                )
            )
        return int(found or 0)
    finally:
        await engine.dispose()


async def wait_done(database_url: str, offset: timedelta, *, within: float = 600) -> float:
    """Seconds until nothing is outstanding at the moved clock (raises after ``within``)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if not any((await outstanding(database_url, offset)).values()):
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    left = await outstanding(database_url, offset)
    raise TimeoutError(f"work still outstanding after {within}s: {left}")


_OUTCOME = {
    "invoices by status": "SELECT status, count(*), sum(total_minor) FROM invoices GROUP BY 1",
    "invoices per account": "SELECT n, count(*) FROM (SELECT account_id, count(*) AS n "
    "FROM invoices GROUP BY 1) AS per GROUP BY 1",
    "recurring items per subscription and period": "SELECT n, count(*) FROM (SELECT "
    "subscription_id, start_date, count(*) AS n FROM invoice_items WHERE kind = 'recurring' "
    "GROUP BY 1, 2) AS per GROUP BY 1",
    "attempts by status": "SELECT status, count(*), sum(amount_minor) FROM payment_attempts "
    "GROUP BY 1",
    "successful attempts per account": "SELECT n, count(*) FROM (SELECT account_id, count(*) "
    "AS n FROM payment_attempts WHERE status = 'succeeded' GROUP BY 1) AS per GROUP BY 1",
    "payments": "SELECT method, count(*), sum(amount_minor) FROM payments GROUP BY 1",
    "messages by kind": "SELECT kind, count(*) FROM messages GROUP BY 1",
    "messages per account and kind": "SELECT n, count(*) FROM (SELECT account_id, kind, "
    "count(*) AS n FROM messages GROUP BY 1, 2) AS per GROUP BY 1",
    "accounts by standing": "SELECT standing, count(*) FROM accounts GROUP BY 1",
}


async def outcome(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the month produced, independent of ids and of which worker did it."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return {
                name: sorted(tuple(row) for row in await session.execute(text(query)))
                for name, query in _OUTCOME.items()
            }
    finally:
        await engine.dispose()


async def timed_month(
    database_url: str, redis_url: str, workdir: Path, accounts: int, count: int
) -> float:
    """Seconds ``count`` workers take to do a month's renewals of ``accounts`` accounts,
    from the clock's move to nothing outstanding (on a database the caller emptied)."""
    offset = await prepare(database_url, redis_url, accounts)
    with fleet(database_url, redis_url, workdir, count):
        await listening(redis_url, count)
        await move_clock(redis_url, offset)
        return await wait_done(database_url, offset)
