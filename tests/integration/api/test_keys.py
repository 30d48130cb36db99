"""Key rotation as a tenant does it: issue a new key, move to it, revoke the old one."""

from __future__ import annotations

from tests.integration.conftest import Stack, Tenant


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def issue(stack: Stack, tenant: Tenant, kind: str) -> dict[str, str]:
    response = await stack.api.post("/v1/tenant/keys", json={"kind": kind}, headers=tenant.admin)
    assert response.status == 201, await response.text()
    body: dict[str, str] = await response.json()
    return body


async def test_a_revoked_gateway_key_stops_working_on_the_gateway(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await stack.wait_allowed(tenant, "alice")
    new = await issue(stack, tenant, "gateway")
    assert new["key"].startswith(new["id"] + ".")

    async def answers(key: str) -> int:
        response = await stack.gateway.post(
            "/v1/authorize", json={"user": "alice"}, headers=bearer(key)
        )
        return response.status

    async def new_key_works() -> bool:
        return await answers(new["key"]) == 200

    await stack.eventually(new_key_works)
    assert await answers(new["key"]) == 200  # verified once, then served from the memo

    revoked = await stack.api.delete(f"/v1/tenant/keys/{new['id']}", headers=tenant.admin)
    assert revoked.status == 200
    assert (await revoked.json())["revoked_at"] is not None

    async def new_key_refused() -> bool:
        return await answers(new["key"]) == 401

    await stack.eventually(new_key_refused, within=1.0)
    assert (await stack.authorize(tenant, "alice"))["allow"]  # the first key still works

    listed = await (await stack.api.get("/v1/tenant/keys", headers=tenant.admin)).json()
    assert sorted(
        (k["kind"], k["id"] == new["id"], k["revoked_at"] is None) for k in listed["data"]
    ) == [
        ("admin", False, True),
        ("gateway", False, True),
        ("gateway", True, False),
    ]
    assert all("key" not in k and "secret_hash" not in k for k in listed["data"])


async def test_admin_keys_rotate_but_the_last_one_cannot_be_revoked(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    listed = await (await stack.api.get("/v1/tenant/keys", headers=tenant.admin)).json()
    [first_admin] = [k["id"] for k in listed["data"] if k["kind"] == "admin"]

    refused = await stack.api.delete(f"/v1/tenant/keys/{first_admin}", headers=tenant.admin)
    assert refused.status == 409
    assert "last admin key" in (await refused.json())["detail"]

    second = await issue(stack, tenant, "admin")
    revoked = await stack.api.delete(
        f"/v1/tenant/keys/{first_admin}", headers=bearer(second["key"])
    )
    assert revoked.status == 200
    assert (await stack.api.get("/v1/tenant", headers=tenant.admin)).status == 401
    assert (await stack.api.get("/v1/tenant", headers=bearer(second["key"]))).status == 200


async def test_keys_are_the_tenants_own(stack: Stack) -> None:
    acme, other = await stack.new_tenant("Acme"), await stack.new_tenant("Other")
    listed = await (await stack.api.get("/v1/tenant/keys", headers=acme.admin)).json()
    acme_key = listed["data"][0]["id"]
    response = await stack.api.delete(f"/v1/tenant/keys/{acme_key}", headers=other.admin)
    assert response.status == 404
    bad = await stack.api.post("/v1/tenant/keys", json={"kind": "root"}, headers=acme.admin)
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["field"] == "kind"


async def test_an_admin_key_on_the_gateway_is_told_which_key_the_gateway_takes(
    stack: Stack,
) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await stack.wait_allowed(tenant, "alice")
    response = await stack.gateway.post(
        "/v1/authorize", json={"user": "alice"}, headers=tenant.admin
    )
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    detail = (await response.json())["detail"]
    assert "kind gateway" in detail
    assert "admin keys work on the management API only" in detail
