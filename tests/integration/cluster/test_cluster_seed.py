"""On a Redis Cluster: a seeded population spreads evenly over the masters, is decided as
seeded, and ``cache rebuild`` brings every key back after the view is lost."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.jobs.rebuild import rebuild
from shared import keys
from shared.clock import ManualClock
from shared.redis_connection import RedisClient, flush_everything, keys_per_node
from tests.integration.billing.test_seed import test_seeded_users_are_decided_as_seeded
from tests.integration.conftest import Stack
from tollgate.seed import SeedPlan, seed

__all__ = ["test_seeded_users_are_decided_as_seeded"]


async def test_a_seeded_view_spreads_evenly_and_is_rebuilt_whole(
    stack: Stack, redis_client: RedisClient, database_url: str
) -> None:
    plan = SeedPlan(users=3000, users_per_enterprise=20)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        await seed(sessions, redis_client, plan, datetime.now(UTC), progress=False)
        seeded = await keys_per_node(redis_client)
        assert len(seeded) == 3
        total = sum(seeded.values())
        assert total > 3000  # a user entry per user, a record per account, keys, marker
        shares = {node: count / total for node, count in seeded.items()}
        print("keys per master after seeding:", seeded, "shares:", shares)
        # CRC16 over 16,384 slots: each third within a few percent of a third
        assert all(0.28 < share < 0.39 for share in shares.values()), shares

        await flush_everything(redis_client)
        counts = await rebuild(sessions, redis_client, ManualClock(datetime.now(UTC)))
        assert await redis_client.exists(keys.VIEW_KEY)
        assert sum((await keys_per_node(redis_client)).values()) == total
        assert counts["users"] == 3000
    finally:
        await engine.dispose()
