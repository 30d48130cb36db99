"""The console in a real browser (Debian's chromium driven by Playwright): sign in, find the
account that was suspended for not paying, record its payment and see it active again —
and the gateway allow its user; open its invoice and download the PDF. Each page's
screenshot is kept as a test artefact (``TOLLGATE_ARTEFACTS``, else the test's temporary
folder); docs/console/ holds copies."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pypdf
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.conftest import Stack
from tests.integration.gateway.test_sessions import wait_published

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (./dev.sh test installs it)"
)

# What a page shows after an API call, waited for longer than Playwright's 5 s: on the
# suite's two shared cores a neighbouring test (four workers on PostgreSQL) can hold an
# answer for seconds (seen once: the payment form's outcome still "…" at 5 s).
expect.set_options(timeout=20_000)


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("TOLLGATE_ARTEFACTS", tmp_path)) / "console"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


def _policy_refusals(page: Page) -> list[str]:
    """What the page's Content-Security-Policy refused, as the browser reports it."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)  # fmt: skip
    return refused


async def _shot(page: Page, artefacts: Path, name: str) -> None:
    await page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


async def test_an_administrator_brings_a_suspended_customer_back(
    stack: Stack, browser: Browser, artefacts: Path
) -> None:
    tenant = await stack.new_tenant("Acme Analytics")
    for user in ("ann", "bob", "cat"):
        await stack.customer(tenant, user)  # Pro, 49.00 a month, none of them paying
    await stack.api.post("/v1/test/clock", json={"advance_days": 31}, headers=stack.operator)

    async def suspended() -> bool:
        found = await (await stack.api.get("/v1/accounts", headers=tenant.admin)).json()
        return [a["standing"] for a in found["data"]] == ["suspended"] * 3

    await stack.eventually(suspended, within=15)
    base = str(stack.api.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    refused = _policy_refusals(page)

    await page.goto(f"{base}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await _shot(page, artefacts, "sign-in")
    await page.get_by_label("Key").fill(tenant.admin["Authorization"].removeprefix("Bearer "))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    suspended_row = page.locator("tr", has=page.locator(".badge.suspended"))
    await expect(suspended_row.locator("td.num").first).to_have_text("3")
    await _shot(page, artefacts, "overview")

    await page.get_by_role("link", name="Accounts").click()
    await page.get_by_label("Search").fill("Account of bob")
    await expect(page.locator("#accounts tbody tr")).to_have_count(1)
    await _shot(page, artefacts, "accounts")
    await page.get_by_role("link", name="Account of bob").click()
    await expect(page.locator("#standing")).to_have_text("suspended")
    owed = (await page.locator("#balance").inner_text()).removeprefix("USD ").strip()
    assert owed == "98.00"  # two months of Pro unpaid: the first invoice and the renewal

    form = page.locator("#record-payment")
    await form.get_by_label("Amount").fill("12,50")  # refused, named, nothing recorded
    await form.get_by_role("button", name="Record payment").click()
    await expect(form.locator(".outcome")).to_contain_text("amount")
    await form.get_by_label("Amount").fill(owed)
    await form.get_by_role("button", name="Record payment").click()
    await expect(page.locator("#standing")).to_have_text("active")
    await expect(page.locator("#balance")).to_have_text("USD 0.00")
    await _shot(page, artefacts, "account")

    # a wire for one invoice: cat pays its renewal by name, not the oldest invoice first
    await page.get_by_role("link", name="Accounts").click()
    await page.get_by_label("Search").fill("Account of cat")
    await expect(page.locator("#accounts tbody tr")).to_have_count(1)
    await page.get_by_role("link", name="Account of cat").click()
    form = page.locator("#record-payment")
    await form.get_by_label("Amount").fill("49.00")
    await form.get_by_label("Pays").select_option(index=1)  # the newest open invoice
    await form.get_by_role("button", name="Record payment").click()
    await expect(page.locator("#balance")).to_have_text("USD 49.00")
    rows = page.locator("section:has(h2:text('Invoices')) tbody tr")
    await expect(rows.nth(0)).to_contain_text("paid")  # the renewal, named
    await expect(rows.nth(1)).to_contain_text("open")  # the oldest, still owed
    await page.get_by_role("link", name="Accounts").click()
    await page.get_by_label("Search").fill("Account of bob")
    await page.get_by_role("link", name="Account of bob").click()

    # its invoicing held by hand, then resumed: the page says which
    mode = page.locator("#invoicing-mode")
    await mode.get_by_label("Invoicing").select_option("held")
    await mode.get_by_role("button", name="Set invoicing").click()
    await expect(page.locator("#invoicing")).to_contain_text("held")
    await mode.get_by_label("Invoicing").select_option("automatic")
    await mode.get_by_role("button", name="Set invoicing").click()
    await expect(page.locator("#invoicing")).to_have_text("automatic")

    # its first invoice, as the customer reads it, and the same as a PDF
    await page.get_by_role("link", name="INV-").last.click()
    await expect(page.get_by_role("heading", name="Invoice INV-")).to_be_visible()
    number = (await page.get_by_role("heading", name="Invoice INV-").inner_text()).split()[-1]
    await _shot(page, artefacts, "invoice")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download PDF").click()
    pdf = artefacts / f"{number}.pdf"
    await (await download_info.value).save_as(pdf)
    text = "".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages)
    for expected in (number, "Acme Analytics", "Account of bob", "$49.00", "Balance due"):
        assert expected in text, (expected, text)

    await wait_published(stack, tenant, "bob")

    async def allowed() -> bool:
        return bool((await stack.authorize(tenant, "bob"))["allow"])

    await stack.eventually(allowed, within=10)
    assert not (await stack.authorize(tenant, "ann"))["allow"]  # still suspended
    assert refused == [], refused  # every page, form and chart kept to its policy


BAD_CATALOG = """\
effective_date: 2027-01-01
currencies: [USD]
products:
  pro: {category: base}
plans:
  pro-monthly:
    product: pro
    billing_period: fortnightly
    phases:
      - {type: evergreen, duration: {unit: days, number: 14}, recurring: {USD: "31.00"}}
"""


async def test_the_catalog_page_shows_plans_and_refuses_a_bad_upload_by_path(
    stack: Stack, browser: Browser, artefacts: Path
) -> None:
    tenant = await stack.new_tenant("Acme Analytics")
    await stack.customer(tenant, "ann")  # a catalog with the Pro plan, 49.00 a month
    base = str(stack.api.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{base}/console/sign-in")
    await page.get_by_label("Key").fill(tenant.admin["Authorization"].removeprefix("Bearer "))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Catalog").click()
    plans = page.locator("#plans tbody tr")
    await expect(plans).to_have_count(1)
    await expect(plans.first).to_contain_text("USD 49.00 per month")

    form = page.locator("#upload-catalog")
    await form.get_by_label("YAML or JSON").fill(BAD_CATALOG)
    await form.get_by_role("button", name="Upload").click()
    problems = form.locator(".outcome li")
    await expect(problems.first).to_be_visible()
    fields = await problems.locator("code").all_inner_texts()
    assert "plans.pro-monthly.billing_period" in fields, fields
    await _shot(page, artefacts, "catalog")
    await expect(plans).to_have_count(1)  # refused whole: nothing changed

    good = BAD_CATALOG.replace("fortnightly", "monthly").replace(
        "{type: evergreen, duration: {unit: days, number: 14}, ",
        "{type: trial, duration: {unit: days, number: 14}}\n      - {type: evergreen, ",
    )
    await form.get_by_label("YAML or JSON").fill(good)
    await form.get_by_role("button", name="Upload").click()
    await expect(page.locator("#plans")).to_contain_text("pro-monthly")
    await expect(page.locator("#plans")).to_contain_text("14 days: free")


async def test_a_timeline_runs_on_a_private_simulation_and_is_charted(
    stack: Stack, browser: Browser, artefacts: Path
) -> None:
    tenant = await stack.new_tenant("Acme Analytics")
    before = await (await stack.api.get("/v1/accounts", headers=tenant.admin)).json()
    base = str(stack.api.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    refused = _policy_refusals(page)  # htmx, the queue's polling and the chart under the CSP
    await page.goto(f"{base}/console/sign-in")
    await page.get_by_label("Key").fill(tenant.admin["Authorization"].removeprefix("Bearer "))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Timeline").click()
    await page.get_by_role("button", name="Run the timeline").click()  # the example scenario
    await expect(page.get_by_role("heading", name="Passed")).to_be_visible(timeout=90_000)
    text = await page.locator("pre.timeline-text").inner_text()
    # six weeks unpaid: grace, then suspended on day 31 of the first invoice; paid: active
    assert "suspended (payment_overdue)" in text, text
    assert "active (in_good_standing), balance 0.00" in text, text
    await expect(page.locator("#timeline-chart canvas")).to_have_count(1)
    await _shot(page, artefacts, "timeline")
    assert refused == [], refused
    after = await (await stack.api.get("/v1/accounts", headers=tenant.admin)).json()
    assert after == before  # the simulation never touched the tenant's own data


async def test_every_page_tells_the_browser_its_rules_and_breaks_none(
    stack: Stack, browser: Browser
) -> None:
    tenant = await stack.new_tenant("Acme Analytics")
    account = await stack.customer(tenant, "ann")
    base = str(stack.api.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    refused = _policy_refusals(page)
    await page.goto(f"{base}/console/sign-in")
    await page.get_by_label("Key").fill(tenant.admin["Authorization"].removeprefix("Bearer "))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    for path, heading in (("/console/overview", "Overview"), ("/console/accounts", "Accounts"),
                          (f"/console/accounts/{account}", None), ("/console/catalog", "Catalog"),
                          ("/console/timeline", "Timeline")):  # fmt: skip
        answer = await page.goto(base + path)
        assert answer is not None
        headers = await answer.all_headers()
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["cache-control"] == "no-store", path
        if heading:
            await expect(page.get_by_role("heading", name=heading)).to_be_visible()
    assert refused == [], refused
    # another site cannot frame the console (the parent's load waits for the frame's)
    framer = await browser.new_page()
    await framer.set_content(f'<iframe src="{base}/console/overview"></iframe>')
    framed = framer.frames[1]
    assert "Overview" not in await framed.content()
