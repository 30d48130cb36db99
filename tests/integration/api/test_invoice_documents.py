"""Invoice numbers and the printable invoice: numbers run 1, 2, 3… per tenant in the order
invoices are issued (a draft has none until committed), with no gap and no repeat however
many are issued at once; the PDF carries the number, both parties and the amounts written
the currency's way."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pypdf

from tests.integration.conftest import Stack, Tenant


async def _call(stack: Stack, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    response = await stack.api.request(method, path, json=body, headers=tenant.admin)
    assert response.status < 300, (path, response.status, await response.text())
    return await response.json()


async def _invoices(stack: Stack, tenant: Tenant, account: str) -> list[dict[str, Any]]:
    return list((await _call(stack, tenant, "GET", f"/v1/accounts/{account}/invoices"))["data"])


async def test_numbers_follow_issue_per_tenant_without_gaps(stack: Stack) -> None:
    acme, globex = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    first = await stack.customer(acme, "ann")
    [invoice] = await _invoices(stack, acme, first)
    assert invoice["number"] == "INV-000001"
    [theirs] = await _invoices(stack, globex, await stack.customer(globex, "zed"))
    assert theirs["number"] == "INV-000001"  # each tenant counts its own

    # many issued at once, by concurrent requests: each number once, none skipped
    accounts = await asyncio.gather(*(stack.customer(acme, f"user{n}") for n in range(12)))
    numbers = sorted([(await _invoices(stack, acme, a))[0]["number"] for a in accounts])
    assert numbers == [f"INV-{n:06d}" for n in range(2, 14)]

    # a draft has no number; committing issues it with the next one
    charge = {"amount": "15.00", "currency": "USD", "description": "Setup", "draft": True}
    draft = await _call(stack, acme, "POST", f"/v1/accounts/{first}/charges", charge)
    assert draft["number"] is None
    committed = await _call(stack, acme, "POST", f"/v1/invoices/{draft['id']}/commit", {})
    assert committed["number"] == "INV-000014"


async def test_the_pdf_reads_as_the_customer_would_read_it(stack: Stack) -> None:
    tenant, other = await stack.new_tenant("Acme Analytics"), await stack.new_tenant("Globex")
    account = await stack.customer(tenant, "ann")
    address = ["Initech Inc", "4120 Freidrich Lane", "Austin TX 78744"]
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"billing_address": address})
    [invoice] = await _invoices(stack, tenant, account)

    pdf = await stack.api.get(f"/v1/invoices/{invoice['id']}.pdf", headers=tenant.admin)
    assert pdf.status == 200
    assert pdf.content_type == "application/pdf"
    assert 'filename="INV-000001.pdf"' in pdf.headers["Content-Disposition"]
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(await pdf.read())).pages)
    for expected in ("INV-000001", "Acme Analytics", "Account of ann", "4120 Freidrich Lane",
                     "Austin TX 78744", "$49.00", "Balance due"):  # fmt: skip
        assert expected in text, (expected, text)

    asked = await stack.api.get(
        f"/v1/invoices/{invoice['id']}", headers={**tenant.admin, "Accept": "application/pdf"}
    )
    assert asked.content_type == "application/pdf"
    assert (await asked.read()).startswith(b"%PDF")
    hidden = await stack.api.get(f"/v1/invoices/{invoice['id']}.pdf", headers=other.admin)
    assert hidden.status == 404
    assert hidden.content_type == "application/problem+json"


async def test_amounts_are_written_the_currencys_way(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await _call(stack, tenant, "POST", "/v1/accounts",
                          {"name": "Kaisha KK", "currency": "JPY"})  # fmt: skip
    charge = {"amount": "1204500", "currency": "JPY", "description": "Annual licence"}
    invoice = await _call(stack, tenant, "POST", f"/v1/accounts/{account['id']}/charges", charge)
    pdf = await stack.api.get(f"/v1/invoices/{invoice['id']}.pdf", headers=tenant.admin)
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(await pdf.read())).pages)
    assert "¥1,204,500" in text  # no decimals in yen
