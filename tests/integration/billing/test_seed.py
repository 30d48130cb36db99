"""``tollgate seed`` builds a population whose decisions match the standing it chose, and
that the worker's own rules leave alone."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Account, User
from billing_worker.jobs.scheduler import run_due
from shared.clock import ManualClock
from tests.integration.conftest import Stack, Tenant
from tollgate.seed import SeedPlan, seed

EXPECTED = {
    "active": (True, "in_good_standing"),
    "grace": (True, "payment_due"),
    "degraded": (True, "payment_overdue"),
    "suspended": (False, "payment_overdue"),
    "cancelled": (False, "no_active_subscription"),
}


async def test_seeded_users_are_decided_as_seeded(
    stack: Stack, redis_client: aioredis.Redis, database_url: str
) -> None:
    plan = SeedPlan(
        users=600, users_per_enterprise=20, grace=0.1, degraded=0.1, suspended=0.1, cancelled=0.1
    )
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        [tenant_keys] = await seed(sessions, redis_client, plan, now, progress=False)
        async with sessions() as session:
            users = await session.scalar(select(func.count()).select_from(User))
            rows = await session.execute(select(Account.kind, func.count()).group_by(Account.kind))
            kinds = {kind: count for kind, count in rows}
        assert users == 600
        assert kinds["enterprise"] == 9  # 180 enterprise users, 20 per account
        assert await run_due(sessions, ManualClock(now)) == 0  # nothing for the worker to fix
    finally:
        await engine.dispose()

    tenant = Tenant(
        id=tenant_keys.id,
        admin={"Authorization": f"Bearer {tenant_keys.admin_key}"},
        gateway={"Authorization": f"Bearer {tenant_keys.gateway_key}"},
    )
    for standing, (allow, reason) in EXPECTED.items():
        sample = tenant_keys.users[standing]
        assert sample, standing
        for user in sample[:5]:
            decision = await stack.authorize(tenant, user)
            assert (decision["allow"], decision["reason"]) == (allow, reason), (standing, user)
            assert decision.get("standing", standing) == standing
