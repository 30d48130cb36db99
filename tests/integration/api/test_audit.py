"""The audit log: one row per committed change, naming the key (or job) and the request that
made it, the object and the fields before and after, secrets redacted; nothing for a change
that was refused or rolled back; each tenant sees its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from billing_worker.db.audit import Actor, ActorKind, acting_as
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Account, AuditEntry
from shared.credentials import split_token
from tests.integration.conftest import Stack, Tenant


async def _audit(stack: Stack, tenant: Tenant, query: str = "") -> list[dict[str, Any]]:
    response = await stack.api.get(f"/v1/audit{query}", headers=tenant.admin)
    assert response.status == 200, await response.text()
    return list((await response.json())["data"])


def _key_id(tenant: Tenant) -> str:
    parts = split_token(tenant.admin["Authorization"].removeprefix("Bearer "))
    assert parts is not None
    return parts[0]


async def test_each_committed_change_is_recorded_with_its_key_request_and_fields(
    stack: Stack,
) -> None:
    tenant = await stack.new_tenant()
    other = await stack.new_tenant("Other")
    before = await _audit(stack, tenant)

    created = await stack.api.post(
        "/v1/accounts",
        json={"name": "Northwind", "email": "ap@northwind.example"},
        headers={**tenant.admin, "X-Request-Id": "req-create-1"},
    )
    assert created.status == 201
    assert created.headers["X-Request-Id"] == "req-create-1"
    account = (await created.json())["id"]
    renamed = await stack.api.patch(
        f"/v1/accounts/{account}", json={"name": "Northwind Traders"}, headers=tenant.admin
    )
    assert renamed.status == 200
    # refused requests change nothing, so they leave nothing
    assert (await stack.api.post("/v1/accounts", json={}, headers=tenant.admin)).status == 422
    refused = await stack.api.patch(
        f"/v1/accounts/{account}", json={"cycle_day": 40}, headers=tenant.admin
    )
    assert refused.status == 422
    issued = await stack.api.post("/v1/tenant/keys", json={"kind": "gateway"}, headers=tenant.admin)
    assert issued.status == 201, await issued.text()

    entries = await _audit(stack, tenant)
    new = entries[: len(entries) - len(before)]
    assert [(e["object_type"], e["action"]) for e in reversed(new)] == [
        ("account", "created"),
        ("account", "updated"),
        ("api_key", "created"),
    ]
    made, renaming, key = reversed(new)
    assert made["object_id"] == account
    assert made["actor"] == {"kind": "admin_key", "id": _key_id(tenant)}
    assert made["request_id"] == "req-create-1"
    assert made["changes"]["name"] == [None, "Northwind"]
    assert made["changes"]["email"] == [None, "ap@northwind.example"]
    assert renaming["changes"] == {"name": ["Northwind", "Northwind Traders"]}
    assert renaming["request_id"] == renamed.headers["X-Request-Id"] != made["request_id"]
    assert key["object_id"] == (await issued.json())["id"]
    assert key["changes"]["secret_hash"] == [None, "[redacted]"]  # no secret, not even hashed
    assert key["changes"]["kind"] == [None, "gateway"]

    # filters, pages, and another tenant's view
    only = await _audit(stack, tenant, f"?object_type=account&object_id={account}")
    assert [e["action"] for e in only] == ["updated", "created"]
    first = await stack.api.get("/v1/audit?limit=1", headers=tenant.admin)
    page = await first.json()
    assert len(page["data"]) == 1
    assert page["next"] == str(page["data"][0]["id"])
    rest = await _audit(stack, tenant, f"?after={page['next']}")
    assert [e["id"] for e in rest] == [e["id"] for e in entries[1:]]
    assert all(e["object_id"] != account for e in await _audit(stack, other))
    hidden = await _audit(stack, other, f"?object_id={account}")
    assert hidden == []


async def test_bad_filters_are_each_named(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    response = await stack.api.get(
        "/v1/audit?actor_kind=robot&from=yesterday&after=x", headers=tenant.admin
    )
    assert response.status == 422
    named = {e["field"] for e in (await response.json())["errors"]}
    assert named == {"actor_kind", "from", "after"}
    beyond = await stack.api.get("/v1/audit?after=99999999999999999999", headers=tenant.admin)
    assert beyond.status == 422  # larger than any id: named, not a database error


async def test_a_rolled_back_change_leaves_no_row_and_a_committed_one_leaves_one(
    stack: Stack, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    account = await stack.post("/v1/accounts", tenant, {"name": "Rollback Ltd"})
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)

        async def rows() -> int:
            async with sessions() as session:
                count = select(func.count()).where(AuditEntry.object_id == account["id"])
                return await session.scalar(count) or 0

        start = await rows()
        with acting_as(Actor(ActorKind.COMMAND, "test")):
            async with sessions() as session:
                async with session.begin():
                    row = await session.get(Account, account["id"])
                    assert row is not None
                    row.name = "Never Ltd"
                    await session.flush()  # the audit row is written here...
                    await session.rollback()  # ...and rolled back with the change
            assert await rows() == start
            async with sessions() as session, session.begin():
                row = await session.get(Account, account["id"])
                assert row is not None
                row.name = "Committed Ltd"
                row.next_evaluation_at = None  # bookkeeping: not audited
        assert await rows() == start + 1
        entry = (await _audit(stack, tenant, f"?object_id={account['id']}"))[0]
        assert entry["actor"] == {"kind": "command", "id": "test"}
        assert entry["changes"] == {"name": ["Rollback Ltd", "Committed Ltd"]}
    finally:
        await engine.dispose()


async def test_changes_made_by_jobs_name_the_job(stack: Stack) -> None:
    """The collector charges a new subscription's first invoice: the payment and the
    invoice becoming paid are recorded as the worker's jobs' doing, with no request."""
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "ann")
    await stack.post(
        f"/v1/accounts/{account}/payment-methods", tenant, {"token": "tok_sandbox_success"}
    )

    async def paid() -> bool:
        entries = await _audit(stack, tenant, "?object_type=payment")
        return bool(entries)

    await stack.eventually(paid, within=10)
    payment = (await _audit(stack, tenant, "?object_type=payment"))[0]
    assert payment["actor"]["kind"] == "job"
    assert payment["actor"]["id"] in ("collector", "payment-queue")
    assert payment["request_id"] is None
    assert payment["changes"]["amount_minor"] == [None, 4900]
    invoice_paid = [
        e
        for e in await _audit(stack, tenant, "?object_type=invoice&actor_kind=job")
        if e["changes"].get("status", [None, None])[1] == "paid"
    ]
    assert len(invoice_paid) == 1
