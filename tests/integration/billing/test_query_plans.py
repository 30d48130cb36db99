"""Lookups that must stay index lookups as the tables grow, on SQLite's own plans.

SQLite plans from the statistics ``ANALYZE`` leaves (the seed runs it, as does any
operator after a restore). Counting every NULL as one value, they once said a parent's
children were the whole accounts table, and each invoice-run batch scanned it: a run
slowed with every account added.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.invoicing.prefetch import children_of
from shared import redis_connection
from tollgate.seed import SeedPlan, seed

#: Accounts the statistics are scaled to: a run at this size scanned the table per batch.
AT_SCALE = 100_000


def _scaled(stat: str, rows: int) -> str:
    """An index's ``sqlite_stat1`` entry as ``ANALYZE`` would write it with ``AT_SCALE`` rows
    of the same shape: the row count, and every average that was the whole table (a column
    all NULL, or one value) still the whole table."""
    first, *averages = (int(n) for n in stat.split())
    return " ".join(str(AT_SCALE if n == first else n) for n in (first, *averages))


async def test_a_batchs_children_are_found_by_index_at_scale(
    database_url: str, redis_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's statistics keep NULLs apart (null_frac)")
    engine = create_engine(database_url)
    client = redis_connection.connect(redis_url)
    try:
        sessions = session_factory(engine)
        plan = SeedPlan(users=300, enterprise_share=0)  # no account has a parent
        await seed(sessions, client, plan, datetime.now(UTC), progress=False)  # ANALYZEs
        statement = children_of([f"acc_{n}" for n in range(500)]).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
        async with sessions() as session, session.begin():
            stats = (await session.execute(text("SELECT idx, stat FROM sqlite_stat1 "
                                                "WHERE tbl = 'accounts'"))).all()  # fmt: skip
            assert stats, "the seed left no statistics"
            rows = int(stats[0].stat.split()[0])
            for index, stat in stats:
                await session.execute(
                    text("UPDATE sqlite_stat1 SET stat = :stat WHERE tbl = 'accounts' AND "
                         "idx IS :idx"), {"stat": _scaled(stat, rows), "idx": index},
                )  # fmt: skip
            await session.execute(text("ANALYZE sqlite_schema"))  # the planner rereads them
            plan_rows = (await session.execute(text(f"EXPLAIN QUERY PLAN {statement}"))).all()
        steps = " / ".join(str(row[-1]) for row in plan_rows)
        assert "USING INDEX ix_accounts_parent_id" in steps, steps
        assert "SCAN accounts" not in steps, steps
    finally:
        await client.aclose()
        await engine.dispose()
