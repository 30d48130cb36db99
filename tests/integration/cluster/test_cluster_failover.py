"""A master of the cluster dies under load: the gateway answers by its fail policy while
the master's slots have no owner, never allows a suspended account, and gives normal
answers again shortly after a replica is promoted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import keys
from shared.redis_connection import connect_sync
from tests.integration.conftest import Stack, Tenant
from tests.integration.gateway.test_fail_policy import authorize
from tollgate.redis_server import RedisClusterProcesses

NODE_TIMEOUT_MS = 1000
NEAR_CACHE_TTL = 0.05


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    """A cluster only this test uses, so one of its masters can be killed."""
    cluster = RedisClusterProcesses(tmp_path / "cluster", node_timeout_ms=NODE_TIMEOUT_MS)
    yield cluster
    cluster.close()


@pytest.fixture
def stack_redis_url(own_cluster: RedisClusterProcesses) -> str:
    return own_cluster.url


@pytest.fixture
def gateway_env() -> dict[str, str]:
    # Entries go stale at once, so every decision needs Redis (or the fail policy).
    return {"TOLLGATE_NEAR_CACHE_TTL": str(NEAR_CACHE_TTL), "TOLLGATE_REDIS_TIMEOUT": "0.2"}


def _owner(cluster: RedisClusterProcesses, key: str) -> int:
    """The port of the master serving ``key``'s slot now."""
    client = connect_sync(cluster.url)
    try:
        node = client.get_node_from_key(key)  # type: ignore[union-attr]
        return int(node.port)
    finally:
        client.close()


async def test_a_master_killed_under_load_gives_no_wrong_allow_and_recovers(
    stack: Stack, own_cluster: RedisClusterProcesses
) -> None:
    tenant: Tenant = await stack.new_tenant()
    long_ago = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    paying = [f"payer-{n}" for n in range(12)]
    unpaid = [f"unpaid-{n}" for n in range(12)]
    accounts = {user: await stack.customer(tenant, user) for user in paying}
    accounts |= {user: await stack.customer(tenant, user, start_at=long_ago) for user in unpaid}

    async def settled() -> bool:
        answers = [await authorize(stack, tenant, user) for user in paying + unpaid]
        return all(
            status == 200 and body["allow"] is user.startswith("payer")
            for (status, body), user in zip(answers, paying + unpaid, strict=True)
        )

    await stack.eventually(settled, within=15)

    # the master serving the most of these users' records and entries
    owners = [_owner(own_cluster, keys.user_key(tenant.id, user)) for user in paying + unpaid]
    owners += [_owner(own_cluster, keys.account_key(tenant.id, a)) for a in accounts.values()]
    victim = max(set(owners), key=owners.count)

    wrong_allows: list[str] = []
    answers: list[tuple[float, str, int, bool | None]] = []
    stop = asyncio.Event()
    waits: list[float] = []

    async def load(user: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, body = await authorize(stack, tenant, user)
            waits.append(time.monotonic() - started)
            assert status in (200, 503), body  # an answer or the fail policy, never a 5xx else
            allow = body.get("allow") if status == 200 else None
            if allow and user.startswith("unpaid"):
                wrong_allows.append(user)
            answers.append((time.monotonic(), user, status, allow))
            await asyncio.sleep(0.005)

    loaders = [asyncio.create_task(load(user)) for user in paying + unpaid]
    await asyncio.sleep(0.5)
    killed_at = time.monotonic()
    own_cluster.stop_node(victim)

    # the replica's promotion, seen from a surviving node
    promoted_at = None
    while time.monotonic() - killed_at < 30:
        if victim not in own_cluster.masters() and len(own_cluster.masters()) == 3:
            promoted_at = time.monotonic()
            break
        await asyncio.sleep(0.05)
    assert promoted_at is not None, "no replica was promoted within 30 s"
    await asyncio.sleep(NODE_TIMEOUT_MS / 1000 + 2)
    stop.set()
    await asyncio.gather(*loaders)

    assert wrong_allows == []
    during = [a for a in answers if killed_at <= a[0] < promoted_at]
    assert during, "no request was answered while the master was down"
    unavailable = [a for a in during if a[2] == 503]
    normal_again = _first_time_all_normal(answers, paying, unpaid, after=killed_at)
    assert normal_again is not None, "answers never came back to normal"
    recovered = normal_again - promoted_at
    print(
        f"failover: promoted {promoted_at - killed_at:.2f} s after the kill; "
        f"{len(unavailable)} of {len(during)} answers meanwhile by the fail policy; "
        f"every user answered normally from {recovered:+.2f} s after the promotion was seen; "
        f"slowest answer {max(waits):.2f} s"
    )
    assert recovered <= NODE_TIMEOUT_MS / 1000 + 1


def _first_time_all_normal(
    answers: list[tuple[float, str, int, bool | None]],
    paying: list[str],
    unpaid: list[str],
    *,
    after: float,
) -> float | None:
    """The moment from which every answer was the normal one (allow for payers, deny for the
    unpaid), up to the end of the load."""
    last_abnormal = after
    for at, user, status, allow in answers:
        expected = user in paying
        if at >= after and (status != 200 or allow is not expected):
            last_abnormal = max(last_abnormal, at)
    return last_abnormal if answers and answers[-1][0] > last_abnormal else None
