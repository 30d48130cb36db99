"""A support agent sees an account's live sessions and ends one: the gateways refuse it at
once and the seat is free; another tenant sees none of it."""

from __future__ import annotations

from tests.integration.conftest import Stack
from tests.integration.gateway.test_sessions import auth, enterprise, login, seats_plan


async def test_an_account_s_sessions_are_listed_and_one_is_ended(stack: Stack) -> None:
    tenant, other = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    await seats_plan(stack, tenant, 2, "deny_new")
    account = await enterprise(stack, tenant, ["ann", "bob", "cat"], "team-deny_new")
    await stack.wait_allowed(tenant, "ann")
    tokens = {}
    for user in ("ann", "bob"):
        created = await login(stack, tenant, user)
        assert created.status == 201, await created.text()
        tokens[user] = (await created.json())["token"]
    assert (await login(stack, tenant, "cat")).status == 403  # both seats taken

    path = f"/v1/accounts/{account}/sessions"
    listed = await (await stack.api.get(path, headers=tenant.admin)).json()
    assert sorted(s["user_id"] for s in listed["data"]) == ["ann", "bob"]
    bobs = next(s for s in listed["data"] if s["user_id"] == "bob")
    assert bobs["id"].startswith(f"{account}.")

    assert (await stack.api.delete(f"{path}/{bobs['id']}", headers=other.admin)).status == 404
    ended = await stack.api.delete(f"{path}/{bobs['id']}", headers=tenant.admin)
    assert ended.status == 204
    assert (await auth(stack, tenant, tokens["bob"])).status == 401  # refused at once
    assert (await auth(stack, tenant, tokens["ann"])).status == 200
    assert (await login(stack, tenant, "cat")).status == 201  # the seat is free
    again = await stack.api.delete(f"{path}/{bobs['id']}", headers=tenant.admin)
    assert again.status == 404
    for bogus in (f"{account}.", "acc_x.abc", f"{account}.a-b"):
        assert (await stack.api.delete(f"{path}/{bogus}", headers=tenant.admin)).status == 404
    assert (await stack.api.get(path, headers=other.admin)).status == 404
