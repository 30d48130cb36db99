"""Four `tollgate worker` processes on one PostgreSQL database renew 10,000 accounts in
one move of the test clock, and one of them is SIGKILLed in the middle of charging and
restarted: every account is invoiced once for its period, every card charged at most once,
every declined or unpaid account told once — what one worker alone would have produced."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_worker.db.engine import create_engine, session_factory
from tollgate.bench import workers

pytestmark = [pytest.mark.e2e, pytest.mark.long]

ACCOUNTS = 10_000
PRICE_MINOR = 4900  # the seeded consumer plan, monthly


async def _scalar(database_url: str, query: str) -> int:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(text(query)) or 0)
    finally:
        await engine.dispose()


async def test_four_workers_one_killed_bill_every_account_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database; SQLite runs one")
    # three accounts in ten pay by card (one card in ten declining), the rest by invoice
    offset = await workers.prepare(database_url, redis_url, ACCOUNTS, cards=0.3)
    cards = "SELECT count(*) FROM payment_methods WHERE token = "
    good = await _scalar(database_url, cards + "'tok_sandbox_success'")
    bad = await _scalar(database_url, cards + "'tok_sandbox_insufficient_funds'")
    assert 0 < bad < good < ACCOUNTS  # some accounts without a card, some cards declining

    with workers.fleet(database_url, redis_url, tmp_path, 4) as fleet:
        await workers.listening(redis_url, 4)
        await workers.move_clock(redis_url, offset)
        # Kill one worker while charges are being made: some of its attempts are stored
        # pending, some charged but not yet recorded, some half-applied.
        charged = "SELECT count(*) FROM payment_attempts"
        deadline = time.monotonic() + 300
        while await _scalar(database_url, charged) < good // 3:
            assert all(p.poll() is None for p in fleet.processes), "a worker died by itself"
            if time.monotonic() > deadline:
                left = await workers.outstanding(database_url, offset)
                raise AssertionError(f"no charges under way after 300 s: {left}")
            await asyncio.sleep(0.05)
        fleet.kill(0)
        fleet.restart(0)
        await workers.listening(redis_url, 4)
        seconds = await workers.wait_done(database_url, offset)
    print(f"4 workers (one killed, restarted) finished {seconds:.0f} s after the kill")

    outcome = await workers.outcome(database_url)
    unpaid = ACCOUNTS - good
    # one renewal invoice per account, one recurring item per subscription and period
    assert outcome["invoices per account"] == [(2, ACCOUNTS)]
    assert outcome["recurring items per subscription and period"] == [(1, 2 * ACCOUNTS)]
    assert outcome["invoices by status"] == [
        ("open", unpaid, unpaid * PRICE_MINOR),
        ("paid", ACCOUNTS + good, (ACCOUNTS + good) * PRICE_MINOR),
    ]
    # each good card charged exactly once, each declining card tried once, nothing left
    # pending or unknown; every successful charge is one payment
    assert outcome["attempts by status"] == [
        ("declined", bad, bad * PRICE_MINOR),
        ("succeeded", good, good * PRICE_MINOR),
    ]
    assert outcome["successful attempts per account"] == [(1, good)]
    assert outcome["payments"] == [("card", good, good * PRICE_MINOR)]
    # every unpaid account reminded once, every declined card reported once
    assert outcome["messages by kind"] == [("payment_due", unpaid), ("payment_failed", bad)]
    assert outcome["messages per account and kind"] == [(1, unpaid + bad)]
    assert outcome["accounts by standing"] == [("active", good), ("grace", unpaid)]
