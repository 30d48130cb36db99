"""Login sessions and seat limits against a real Redis, driven over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import Stack, Tenant


async def seats_plan(stack: Stack, tenant: Tenant, seats: int, policy: str) -> None:
    await stack.post(
        "/v1/plans",
        tenant,
        {"code": f"team-{policy}", "name": "Team", "currency": "USD", "amount": "10.00",
         "seat_limit": seats, "session_policy": policy},
    )  # fmt: skip


async def enterprise(stack: Stack, tenant: Tenant, users: list[str], plan: str) -> str:
    account = await stack.post("/v1/accounts", tenant, {"name": "Big Co", "kind": "enterprise"})
    for user in users:
        await stack.post(f"/v1/accounts/{account['id']}/users", tenant, {"external_id": user})
    await stack.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, {"plan": plan})
    await stack.post(
        f"/v1/accounts/{account['id']}/payments", tenant, {"amount": "10.00", "currency": "USD"}
    )
    return str(account["id"])


async def login(stack: Stack, tenant: Tenant, user: str) -> Any:
    return await stack.gateway.post("/v1/sessions", json={"user": user}, headers=tenant.gateway)


async def auth(stack: Stack, tenant: Tenant, token: str, method: str = "GET") -> Any:
    """The proxy check as the Python client makes it: bound to the tenant's gateway key."""
    return await stack.gateway.get(
        "/v1/auth", headers={"Authorization": f"Bearer {token}", "X-Original-Method": method,
                             **proxy_key(tenant)},
    )  # fmt: skip


def auth_path(token: str) -> str:
    """``/v1/auth`` bound to the token's own tenant, as the proxy in front of that tenant's
    application asks it (the shipped configurations name their tenant)."""
    return f"/v1/auth?tenant={token.removeprefix('tgs_').split('.')[0]}"


def proxy_key(tenant: Tenant) -> dict[str, str]:
    """``X-Tollgate-Key``: binds a proxy check to the tenant of its gateway key."""
    return {"X-Tollgate-Key": tenant.gateway["Authorization"].removeprefix("Bearer ")}


async def wait_published(stack: Stack, tenant: Tenant, user: str) -> None:
    await stack.wait_allowed(tenant, user)


async def test_login_gives_a_token_the_proxy_accepts_until_logout(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    response = await login(stack, tenant, "alice")
    assert response.status == 201, await response.text()
    session = await response.json()
    allowed = await auth(stack, tenant, session["token"])
    assert allowed.status == 200
    assert allowed.headers["X-Tollgate-User"] == "alice"
    assert allowed.headers["X-Tollgate-Standing"] == "grace"
    assert allowed.headers["X-Tollgate-Features"] == "reports"

    refreshed = await stack.gateway.post(
        f"/v1/sessions/{session['session_id']}/refresh", headers=tenant.gateway
    )
    assert refreshed.status == 200
    ended = await stack.gateway.delete(
        f"/v1/sessions/{session['session_id']}", headers=tenant.gateway
    )
    assert ended.status == 204
    assert (await auth(stack, tenant, session["token"])).status == 401
    gone = await stack.gateway.delete(
        f"/v1/sessions/{session['session_id']}", headers=tenant.gateway
    )
    assert gone.status == 404


async def test_fifty_simultaneous_logins_get_exactly_ten_seats(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await seats_plan(stack, tenant, 10, "deny_new")
    users = [f"user{n}@big.test" for n in range(50)]
    await enterprise(stack, tenant, users, "team-deny_new")
    for user in users:  # every user known to the gateway before the burst
        await wait_published(stack, tenant, user)
    responses = await asyncio.gather(*(login(stack, tenant, user) for user in users))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 10 + [403] * 40
    refused = [await r.json() for r in responses if r.status == 403]
    assert {body["reason"] for body in refused} == {"seat_limit_reached"}
    assert all(body["seat_limit"] == 10 for body in refused)


async def test_evict_oldest_keeps_the_newest_sessions(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await seats_plan(stack, tenant, 3, "evict_oldest")
    users = [f"user{n}@big.test" for n in range(8)]
    await enterprise(stack, tenant, users, "team-evict_oldest")
    for user in users:  # every user must reach the gateway before the logins
        await wait_published(stack, tenant, user)
    tokens = []
    for user in users:
        response = await login(stack, tenant, user)
        assert response.status == 201
        body = await response.json()
        assert body["live_sessions"] <= 3
        tokens.append(body["token"])
    statuses = [(await auth(stack, tenant, token)).status for token in tokens]
    assert statuses == [401] * 5 + [200] * 3

    responses = await asyncio.gather(*(login(stack, tenant, user) for user in users))
    assert all(r.status == 201 for r in responses)
    live = [t for t in [(await r.json())["token"] for r in responses]]
    assert sorted([(await auth(stack, tenant, t)).status for t in live]) == [200] * 3 + [401] * 5


async def test_suspended_account_cannot_log_in_and_its_sessions_stop(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    token = (await (await login(stack, tenant, "alice")).json())["token"]
    assert (await auth(stack, tenant, token)).status == 200

    await stack.api.post("/v1/test/clock", json={"advance_days": 31}, headers=stack.operator)

    async def refused() -> bool:
        response = await auth(stack, tenant, token)
        return response.status == 403 and response.headers["X-Tollgate-Reason"] in (
            "payment_overdue",
            "entitlement_expired",
        )

    await stack.eventually(refused)
    denied = await login(stack, tenant, "alice")
    assert denied.status == 403
    assert denied.content_type == "application/problem+json"
    assert (await denied.json())["code"] == "login_denied"

    owed = (await (await stack.api.get(f"/v1/accounts/{account_id}", headers=tenant.admin)).json())[
        "balance_due"
    ]
    await stack.post(f"/v1/accounts/{account_id}/payments", tenant,
                     {"amount": owed, "currency": "USD"})  # fmt: skip

    async def back() -> bool:
        return (await auth(stack, tenant, token)).status == 200

    await stack.eventually(back, within=1.0)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        "tgs_ten_1.acc_1.abc.secret",  # well formed, no such session
    ],
)
async def test_every_unauthorized_answer_is_the_same(stack: Stack, token: str | None) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    real = await (await login(stack, tenant, "alice")).json()
    forged = real["token"].rsplit(".", 1)[0] + ".wrong-secret"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    first = await stack.gateway.get(f"/v1/auth?tenant={tenant.id}", headers=headers)
    second = await stack.gateway.get(
        "/v1/auth", headers={"Authorization": f"Bearer {forged}", **proxy_key(tenant)}
    )
    for response in (first, second):
        assert response.status == 401
    shape = {k: v for k, v in first.headers.items() if k.startswith(("WWW", "X-", "Cache"))}
    assert shape == {
        k: v for k, v in second.headers.items() if k.startswith(("WWW", "X-", "Cache"))
    }
    assert await first.read() == await second.read()


async def test_cookie_carries_the_session_too(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    token = (await (await login(stack, tenant, "alice")).json())["token"]
    response = await stack.gateway.get(
        f"/v1/auth?tenant={tenant.id}", cookies={"tollgate_session": token}
    )
    assert response.status == 200


async def test_a_disabled_or_removed_user_frees_their_seats_at_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await seats_plan(stack, tenant, 2, "deny_new")
    account = await enterprise(stack, tenant, ["ann", "bob", "cy"], "team-deny_new")
    for user in ("ann", "bob", "cy"):
        await wait_published(stack, tenant, user)
    ann = await (await login(stack, tenant, "ann")).json()
    assert (await login(stack, tenant, "ann")).status == 201  # ann holds both seats
    assert (await login(stack, tenant, "bob")).status == 403
    users = await (await stack.api.get(f"/v1/accounts/{account}/users",
                                       headers=tenant.admin)).json()  # fmt: skip
    ids = {u["external_id"]: u["id"] for u in users["data"]}

    await stack.api.patch(f"/v1/users/{ids['ann']}", json={"status": "disabled"},
                          headers=tenant.admin)  # fmt: skip

    async def bob_gets_in() -> bool:  # nobody checked ann's sessions: they were ended
        return (await login(stack, tenant, "bob")).status == 201

    await stack.eventually(bob_gets_in)
    assert (await auth(stack, tenant, ann["token"])).status == 401
    assert (await login(stack, tenant, "cy")).status == 201  # the second freed seat

    await stack.api.delete(f"/v1/users/{ids['cy']}", headers=tenant.admin)
    await stack.api.patch(f"/v1/users/{ids['ann']}", json={"status": "active"},
                          headers=tenant.admin)  # fmt: skip

    async def ann_gets_in() -> bool:  # cy's seat was freed by the removal
        return (await login(stack, tenant, "ann")).status == 201

    await stack.eventually(ann_gets_in)
