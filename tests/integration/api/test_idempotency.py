"""Idempotency-Key on management POSTs: a retry gets the first answer and changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import event, text, update
from sqlalchemy.orm import Session

from billing_worker.api.http.idempotency import LOST_AFTER, WINDOW
from billing_worker.db.engine import create_engine
from billing_worker.db.models import Base, IdempotentRequest
from tests.integration.conftest import Stack


async def test_a_retried_post_answers_the_same_and_runs_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    headers = {**tenant.admin, "Idempotency-Key": "create-pat-1"}
    first = await stack.api.post("/v1/accounts", json={"name": "Pat"}, headers=headers)
    again = await stack.api.post("/v1/accounts", json={"name": "Pat"}, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers

    changed = await stack.api.post("/v1/accounts", json={"name": "Sam"}, headers=headers)
    assert changed.status == 422
    problem = await changed.json()
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert "different request" in problem["errors"][0]["reason"]

    # Keys are per tenant: another tenant's same key is a new request.
    other = await stack.new_tenant("Other")
    theirs = await stack.api.post(
        "/v1/accounts", json={"name": "Pat"},
        headers={**other.admin, "Idempotency-Key": "create-pat-1"},
    )  # fmt: skip
    assert theirs.status == 201
    assert (await theirs.json())["id"] != (await first.json())["id"]


async def test_payments_retried_or_raced_are_recorded_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.post("/v1/accounts", tenant, {"name": "Quinn"})
    path = f"/v1/accounts/{account['id']}/payments"
    body = {"amount": "25.00", "currency": "USD", "method": "wire"}
    headers = {**tenant.admin, "Idempotency-Key": "wire-2027-001"}

    refused = await stack.api.post(path, json={**body, "amount": "-1"}, headers=headers)
    assert refused.status == 422  # refused before anything changed: the key stays free
    raced = await asyncio.gather(
        *(stack.api.post(path, json=body, headers=headers) for _ in range(5))
    )
    statuses = sorted(r.status for r in raced)
    assert statuses.count(201) >= 1, statuses
    assert set(statuses) <= {201, 409}, statuses
    replay = await stack.api.post(path, json=body, headers=headers)
    assert replay.status == 201

    payments = await (await stack.api.get(path, headers=tenant.admin)).json()
    assert [p["amount"] for p in payments["data"]] == ["25.00"]
    found = await (
        await stack.api.get(f"/v1/accounts/{account['id']}", headers=tenant.admin)
    ).json()
    assert found["credit"] == "25.00"

    bad = await stack.api.post(path, json=body, headers={**tenant.admin, "Idempotency-Key": ""})
    assert bad.status == 422


async def test_no_table_holds_a_secret_in_plaintext(stack: Stack, database_url: str) -> None:
    """A tenant's keys and webhook secrets are shown once; the stored answer a replay gets
    says where to get them instead; keys are hashed and webhook secrets sealed."""
    headers = {**stack.operator, "Idempotency-Key": "new-tenant-1"}
    body = {"name": "Secretive", "notify_webhook_url": "https://hooks.example.com/t"}
    first = await stack.api.post("/v1/tenants", json=body, headers=headers)
    again = await stack.api.post("/v1/tenants", json=body, headers=headers)
    assert (first.status, again.status) == (201, 201)
    shown, replayed = await first.json(), await again.json()
    assert replayed["id"] == shown["id"]
    assert shown["admin_key"].startswith("tgk_")
    assert replayed["admin_key"].startswith("(redacted: shown once")
    assert "shown once" in replayed["webhook_secret"]

    admin = {"Authorization": f"Bearer {shown['admin_key']}"}
    issued = await stack.api.post(
        "/v1/tenant/keys", json={"kind": "gateway"}, headers={**admin, "Idempotency-Key": "k1"}
    )
    assert issued.status == 201
    new_key = (await issued.json())["key"]

    secrets = [
        shown["admin_key"], shown["gateway_key"], new_key,
        shown["webhook_secret"], shown["provider_webhook_secret"],
    ]  # fmt: skip
    tables = await _dump(database_url)
    everything = "\n".join(tables.values())
    for secret in secrets:  # not in any table: keys are hashed, webhook secrets sealed
        found = [name for name, rows in tables.items() if secret.split(".")[-1] in rows]
        assert found == [], secret
    assert "sealed:v1:" in everything
    tenant = await (await stack.api.get("/v1/tenant", headers=admin)).json()
    assert "webhook_secret" not in tenant  # shown once, never again
    assert "provider_webhook_secret" not in tenant
    # a lost secret is replaced, the new one shown once (and not kept with the answer)
    path = "/v1/tenant/secrets/webhook_secret/rotate"
    rotated = await stack.api.post(path, headers={**admin, "Idempotency-Key": "rot-1"})
    again = await stack.api.post(path, headers={**admin, "Idempotency-Key": "rot-1"})
    new, replay = await rotated.json(), await again.json()
    assert new["secret"].startswith("whsec_")
    assert new["secret"] != shown["webhook_secret"]
    assert "rotate" in replay["secret"]
    assert (await stack.api.post("/v1/tenant/secrets/nope/rotate", headers=admin)).status == 404


async def _dump(database_url: str) -> dict[str, str]:
    """Every table's rows as stored (raw SQL: no column type opens anything), as text."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables: dict[str, str] = {}
            for table in Base.metadata.sorted_tables:
                rows = (await connection.execute(text(f"SELECT * FROM {table.name}"))).all()
                tables[table.name] = "\n".join(repr(tuple(map(_text, row))) for row in rows)
            return tables
    finally:
        await engine.dispose()


def _text(value: object) -> object:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


async def test_a_webhook_endpoints_secret_is_not_kept_with_the_answer(
    stack: Stack, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    headers = {**tenant.admin, "Idempotency-Key": "hook-1"}  # as the Python client sends
    body = {"url": "https://hooks.example.com/t"}
    first = await stack.api.post("/v1/webhook-endpoints", json=body, headers=headers)
    again = await stack.api.post("/v1/webhook-endpoints", json=body, headers=headers)
    shown, replayed = await first.json(), await again.json()
    assert shown["secret"].startswith("whsec_")
    assert replayed["id"] == shown["id"]
    assert "rotate-secret" in replayed["secret"]
    tables = await _dump(database_url)
    assert [name for name, rows in tables.items() if shown["secret"] in rows] == []


async def test_a_key_is_forgotten_after_its_window(stack: Stack, database_url: str) -> None:
    tenant = await stack.new_tenant()
    headers = {**tenant.admin, "Idempotency-Key": "monthly-import"}
    first = await stack.api.post("/v1/accounts", json={"name": "First"}, headers=headers)
    assert first.status == 201
    # a day and a minute later (in real time: retries are not on the test clock)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.key == "monthly-import")
                .values(created_at=datetime.now(UTC) - WINDOW - timedelta(minutes=1))
            )
    finally:
        await engine.dispose()
    second = await stack.api.post("/v1/accounts", json={"name": "Second"}, headers=headers)
    assert second.status == 201
    assert "Idempotent-Replayed" not in second.headers
    assert (await second.json())["id"] != (await first.json())["id"]


async def _as_a_crash_left_it(
    database_url: str, key: str, *, response: bytes, age: timedelta
) -> None:
    """The claim of ``key`` as a worker that died after the request's commit, before it
    stored the answer, left it: no answer (only what the claim noted), made ``age`` ago."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.key == key)
                .values(status=0, response=response, created_at=datetime.now(UTC) - age)
            )
    finally:
        await engine.dispose()


async def test_a_retry_whose_answer_was_lost_is_sent_to_read_the_result(
    stack: Stack, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    headers = {**tenant.admin, "Idempotency-Key": "create-initech"}
    created = await (await stack.api.post("/v1/accounts", json={"name": "Initech"},
                                          headers=headers)).json()  # fmt: skip
    noted = orjson.dumps({"resource": f"/v1/accounts/{created['id']}"})
    await _as_a_crash_left_it(database_url, "create-initech", response=noted, age=timedelta(0))
    running = await stack.api.post("/v1/accounts", json={"name": "Initech"}, headers=headers)
    assert running.status == 409  # it may still be running: no answer yet, and no second run
    assert "in progress" in (await running.json())["detail"]

    await _as_a_crash_left_it(database_url, "create-initech", response=noted, age=LOST_AFTER)
    retried = await stack.api.post("/v1/accounts", json={"name": "Initech"}, headers=headers)
    assert retried.status == 200  # 303 See Other, followed: the account it made
    assert retried.history[0].status == 303
    assert (await retried.json())["id"] == created["id"]
    accounts = await (await stack.api.get("/v1/accounts", headers=tenant.admin)).json()
    assert [a["name"] for a in accounts["data"]] == ["Initech"]  # made once

    # an action: its answer lost, the retry reads the account it acted on
    action = {**headers, "Idempotency-Key": "suspend-initech"}
    path = f"/v1/accounts/{created['id']}/suspend"
    assert (await stack.api.post(path, json={}, headers=action)).status == 200
    await _as_a_crash_left_it(database_url, "suspend-initech", response=b"", age=LOST_AFTER)
    again = await stack.api.post(path, json={}, headers=action)
    assert (again.status, again.history[0].headers["Location"]) == (200, path[: -len("/suspend")])
    assert (await again.json())["suspended_manually"] is True


async def test_the_claim_notes_what_the_request_created(stack: Stack) -> None:
    """What a crash after the commit leaves: the claim, committed with the request's
    effects, already says where the object it created is read."""
    tenant = await stack.new_tenant()
    headers = {**tenant.admin, "Idempotency-Key": "create-hooli"}
    noted: list[bytes] = []

    @event.listens_for(Session, "after_commit")
    def _seen(session: Session) -> None:  # the answer is stored in a later transaction
        for obj in session.identity_map.values():
            if isinstance(obj, IdempotentRequest) and obj.key == "create-hooli":
                noted.append(bytes(obj.response))

    try:
        created = await stack.api.post("/v1/accounts", json={"name": "Hooli"}, headers=headers)
        assert created.status == 201
    finally:
        event.remove(Session, "after_commit", _seen)
    account = (await created.json())["id"]
    assert noted[0] == orjson.dumps({"resource": f"/v1/accounts/{account}"})
