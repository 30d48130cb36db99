"""The console's locks, without a browser: no page without a session, a refused key looks
like any other, the session cookie changes nothing without its CSRF token, another
tenant's ids are 404, and signing out or revoking the key ends the session."""

from __future__ import annotations

import asyncio
import re

from aiohttp import ClientResponse

from tests.integration.conftest import OPERATOR_KEY, Stack, Tenant

SIGN_IN = "/console/sign-in"


async def _sign_in(stack: Stack, key: str) -> ClientResponse:
    """Post the sign-in form as a browser would: with the form token its page set."""
    page = await stack.api.get(SIGN_IN)
    token = re.search(r'name="form_token" value="([^"]+)"', await page.text())
    assert token is not None
    return await stack.api.post(
        SIGN_IN, data={"form_token": token[1], "key": key}, allow_redirects=False
    )


def _key(tenant: Tenant) -> str:
    return tenant.admin["Authorization"].removeprefix("Bearer ")


async def _csrf(stack: Stack) -> str:
    page = await stack.api.get("/console/overview")
    assert page.status == 200, await page.text()
    found = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
    assert found is not None
    return found[1]


async def test_pages_need_a_session_and_a_refused_key_tells_nothing(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for page in ("/console", "/console/overview", "/console/accounts", "/console/accounts/acc_x"):
        response = await stack.api.get(page, allow_redirects=False)
        assert response.status == 303, page
        assert response.headers["Location"] in (SIGN_IN, "/console/overview"), page
    unknown = await _sign_in(stack, "tgk_doesnotexist_secret")
    wrong = await _sign_in(stack, _key(tenant)[:-2] + "xx")
    gateway = await _sign_in(stack, tenant.gateway["Authorization"].removeprefix("Bearer "))
    texts = {re.sub(r'value="[^"]+"', "", await r.text()) for r in (unknown, wrong, gateway)}
    assert {unknown.status, wrong.status, gateway.status} == {401}
    assert len(texts) == 1  # the same page for each: no oracle for key ids
    assert "tollgate_console" not in stack.api.session.cookie_jar.filter_cookies(
        stack.api.make_url("/")
    )
    forged = await stack.api.post(
        SIGN_IN, data={"form_token": "guessed", "key": _key(tenant)}, allow_redirects=False
    )
    assert forged.status == 403  # a sign-in posted from another site's form


async def test_the_cookie_changes_nothing_without_its_csrf_token(stack: Stack) -> None:
    tenant, other = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    account = await stack.customer(tenant, "ann")
    theirs = await stack.customer(other, "bob")
    signed = await _sign_in(stack, _key(tenant))
    assert (signed.status, signed.headers["Location"]) == (303, "/console/overview")
    cookie = signed.cookies["tollgate_console"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    csrf = await _csrf(stack)
    assert _key(tenant) not in await (await stack.api.get(f"/console/accounts/{account}")).text()

    path = f"/v1/accounts/{account}/suspend"
    bare = await stack.api.post(path, json={})
    assert bare.status == 403
    assert "X-CSRF-Token" in (await bare.json())["detail"]
    wrong = ("y" if csrf[0] == "x" else "x") + csrf[1:]  # one character off, never the token
    forged = await stack.api.post(path, json={}, headers={"X-CSRF-Token": wrong})
    assert forged.status == 403
    done = await stack.api.post(path, json={"reason": "console"}, headers={"X-CSRF-Token": csrf})
    assert done.status == 200, await done.text()
    assert (await done.json())["standing"] == "suspended"
    audit = await (await stack.api.get("/v1/audit?object_type=account&limit=1")).json()
    assert audit["data"][0]["actor"]["kind"] == "admin_key"  # the console's change is audited

    # another tenant's account: not found, through the page and through the API
    assert (await stack.api.get(f"/console/accounts/{theirs}")).status == 404
    assert (await stack.api.get(f"/v1/accounts/{theirs}")).status == 404
    sign_out = await stack.api.post("/console/sign-out", data={}, allow_redirects=False)
    assert sign_out.status == 403  # the sign-out form needs its token too
    await stack.api.post("/console/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert (await stack.api.get("/console/overview", allow_redirects=False)).status == 303
    assert (await stack.api.get(f"/v1/accounts/{account}")).status == 401


async def test_revoking_the_key_ends_its_console_sessions(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    fresh = await stack.api.post("/v1/tenant/keys", json={"kind": "admin"}, headers=tenant.admin)
    issued = await fresh.json()
    await _sign_in(stack, issued["key"])
    assert (await stack.api.get("/console/overview", allow_redirects=False)).status == 200
    revoked = await stack.api.delete(f"/v1/tenant/keys/{issued['id']}", headers=tenant.admin)
    assert revoked.status in (200, 204), await revoked.text()
    assert (await stack.api.get("/console/overview", allow_redirects=False)).status == 303


async def test_the_operator_picks_a_tenant(stack: Stack) -> None:
    tenant = await stack.new_tenant("Initech")
    account = await stack.customer(tenant, "cat")
    signed = await _sign_in(stack, OPERATOR_KEY)
    assert signed.headers["Location"] == "/console/tenants"
    assert (await stack.api.get("/console/overview", allow_redirects=False)).status == 303
    page = await (await stack.api.get("/console/tenants")).text()
    assert "Initech" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    picked = await stack.api.post(
        "/console/tenants", data={"csrf": csrf[1], "tenant_id": tenant.id}, allow_redirects=False
    )
    assert picked.status == 303
    assert "Account of cat" in await (await stack.api.get(f"/console/accounts/{account}")).text()


async def test_the_overview_shows_revenue_by_plan_and_the_coming_dunning(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for user in ("ann", "bob"):
        await stack.customer(tenant, user)  # Pro, 49.00 a month, unpaid: in grace
    await stack.customer(tenant, "cat", price="49.00")
    await stack.api.post("/v1/test/clock", json={"advance_days": 20}, headers=stack.operator)
    await _sign_in(stack, _key(tenant))

    async def shown() -> bool:
        page = await (await stack.api.get("/console/overview")).text()
        revenue = re.search(r'<table class="bars" id="revenue">(.*?)</table>', page, re.S)
        pipeline = re.search(r'<table id="pipeline">(.*?)</table>', page, re.S)
        assert revenue is not None
        assert pipeline is not None
        rows = re.findall(r"<td>(\d{4}-\d\d-\d\d)</td>.*?grace.*?suspended.*?>(\d+)</td>",
                          pipeline[1], re.S)  # fmt: skip
        return "USD 147.00" in revenue[1] and [n for _, n in rows] == ["3"]

    # three at 49.00 a month; all three reach day 30 of their first invoice in 10 days
    await stack.eventually(shown, within=10)


async def test_a_negotiated_price_is_shown_and_counted_in_the_revenue(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    plan = {"code": "pro", "name": "Pro", "currency": "USD", "amount": "49.00"}
    await stack.post("/v1/plans", tenant, plan)
    account = await stack.post("/v1/accounts", tenant, {"name": "Initech", "kind": "enterprise"})
    deal = {"plan": "pro", "price_overrides": [{"phase": "evergreen", "recurring": "39.00"}]}
    await stack.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, deal)
    await _sign_in(stack, _key(tenant))
    page = await (await stack.api.get(f"/console/accounts/{account['id']}")).text()
    assert "evergreen negotiated 39.00" in page

    async def counted() -> bool:
        overview = await (await stack.api.get("/console/overview")).text()
        revenue = re.search(r'<table class="bars" id="revenue">(.*?)</table>', overview, re.S)
        return revenue is not None and "USD 39.00" in revenue[1]

    await stack.eventually(counted, within=10)  # the deal's price, not the catalog's 49.00


async def test_the_overview_counts_the_gateways_decisions_by_reason(stack: Stack) -> None:
    tenant, other = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    for t, user in ((tenant, "ann"), (other, "zed")):
        await stack.customer(t, user)
        await stack.wait_allowed(t, user)
    await _sign_in(stack, _key(tenant))

    async def counts() -> tuple[int, int]:
        page = await (await stack.api.get("/console/overview")).text()
        allowed = re.search(r"(\d+) allowed", page)
        unknown = re.search(r"<tr><td>unknown_user</td><td class=\"num\">(\d+)</td></tr>", page)
        return int(allowed[1]) if allowed else 0, int(unknown[1]) if unknown else 0

    await asyncio.sleep(1.5)  # what waiting for the users to be published decided is in
    before = await counts()
    for user in ("ann", "ann", "nobody", "ghost"):
        await stack.authorize(tenant, user)
    for user in ("zed", "nobody", "nobody"):
        await stack.authorize(other, user)  # another tenant's decisions are not ours

    async def counted() -> bool:  # the gateways add their counts about once a second
        after = await counts()
        return after == (before[0] + 2, before[1] + 2)

    await stack.eventually(counted, within=10)


async def test_every_console_form_refuses_a_post_without_its_token(stack: Stack) -> None:
    tenant, other = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    theirs = await stack.customer(other, "zed")
    [invoice] = (
        await (await stack.api.get(f"/v1/accounts/{theirs}/invoices", headers=other.admin)).json()
    )["data"]
    await _sign_in(stack, _key(tenant))
    for form, fields in (
        ("/console/sign-out", {}),
        ("/console/tenants", {"tenant_id": tenant.id}),
        ("/console/timeline", {"scenario": "name: x"}),
    ):
        for csrf in (None, "forged"):
            data = fields if csrf is None else {**fields, "csrf": csrf}
            refused = await stack.api.post(form, data=data, allow_redirects=False)
            assert refused.status == 403, (form, csrf)
    assert (await stack.api.get("/console/overview", allow_redirects=False)).status == 200
    # another tenant's invoice is not found, on the page and as a PDF
    assert (await stack.api.get(f"/console/invoices/{invoice['id']}")).status == 404
    assert (await stack.api.get(f"/v1/invoices/{invoice['id']}.pdf")).status == 404
