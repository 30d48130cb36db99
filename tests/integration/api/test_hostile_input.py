"""What an attacker holding one tenant's keys tries (issue #29): every finding of the probe,
each answered with a clear 4xx and nothing read, leaked or held that should not be."""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from billing_worker.api.console import timeline_runs
from billing_worker.api.console.timeline_page import EXAMPLE
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.db.models import Tenant as TenantRow
from tests.integration.api.test_request_bounds import _fields, _problem
from tests.integration.conftest import Stack, Tenant

#: Addresses no parser reads the same way twice, or at all.
BROKEN_URLS = (
    "http://[::1/x",  # a bracket left open: urlsplit raises
    "http://[::1]x/",  # junk after the bracket
    "https://hooks.example.com:99999/x",  # a port past 65535
    "https://hooks.example.com:-1/x",
    "http://user:secret@hooks.example.com/x",  # credentials in the address
)


@pytest.fixture
def worker_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.node.get_closest_marker("untrusted_proxy"):
        return {"TOLLGATE_API_TRUSTED_PROXIES": "10.255.255.0/24"}
    if request.node.get_closest_marker("short_requests"):
        return {"TOLLGATE_REQUEST_SECONDS": "1"}
    if request.node.get_closest_marker("no_sealing_key"):
        return {"TOLLGATE_SECRETS_KEY": ""}
    return {}


async def test_a_broken_address_in_any_url_field_is_a_named_422(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    hook = await stack.post("/v1/webhook-endpoints", tenant, {"url": "https://hooks.example.com/t"})
    for url in BROKEN_URLS:
        attempts = {
            "POST /v1/tenants": stack.api.post(
                "/v1/tenants", json={"name": "Evil", "notify_webhook_url": url},
                headers=stack.operator,
            ),
            "PATCH /v1/tenant": stack.api.patch(
                "/v1/tenant", json={"notify_webhook_url": url}, headers=tenant.admin
            ),
            "POST /v1/webhook-endpoints": stack.api.post(
                "/v1/webhook-endpoints", json={"url": url}, headers=tenant.admin
            ),
            "PATCH /v1/webhook-endpoints/{id}": stack.api.patch(
                f"/v1/webhook-endpoints/{hook['id']}", json={"url": url}, headers=tenant.admin
            ),
        }  # fmt: skip
        for where, attempt in attempts.items():
            fields = _fields(await _problem(await attempt, 422))
            field = "url" if "webhook-endpoints" in where else "notify_webhook_url"
            assert set(fields) == {field}, (where, url, fields)
            reason = fields[field]
            assert "secret" not in reason, reason  # the address is not quoted back
            assert reason.startswith(("not a valid address", "the address may not")), reason


async def _console(stack: Stack, tenant: Tenant) -> str:
    """Sign into the console with the tenant's admin key; the session's CSRF token."""
    page = await stack.api.get("/console/sign-in")
    token = re.search(r'name="form_token" value="([^"]+)"', await page.text())
    assert token is not None
    key = tenant.admin["Authorization"].removeprefix("Bearer ")
    await stack.api.post("/console/sign-in", data={"form_token": token[1], "key": key})
    overview = await stack.api.get("/console/overview")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await overview.text())
    assert csrf is not None
    return csrf[1]


async def _timeline(stack: Stack, csrf: str, scenario: str) -> str:
    """Run a scenario from the console's timeline as the page does; the result's text."""
    answer = await stack.api.post("/console/timeline", data={"csrf": csrf, "scenario": scenario})
    for _ in range(240):  # a run is a whole simulation: up to a minute here
        text = await answer.text()
        if "timeline-waiting" not in text:
            return html.unescape(text)
        await asyncio.sleep(0.25)
        answer = await stack.api.get(answer.url.path)
    raise AssertionError("the run did not finish")


async def test_a_console_scenario_reads_no_file_of_the_server(stack: Stack, tmp_path: Path) -> None:
    secret = tmp_path / "operator_key"
    secret.write_text('password: "tgop_the_operator_key_itself"\n')
    tenant = await stack.new_tenant()
    csrf = await _console(stack, tenant)
    inline = EXAMPLE[EXAMPLE.index("catalog:") : EXAMPLE.index("accounts:")]
    for name in (f"{'../' * 12}{secret}", "/etc/passwd"):
        named = EXAMPLE.replace(inline, f"catalog: {name}\n")
        step = EXAMPLE + f"  - {{on: 2027-03-01, do: upload_catalog, catalog: {name}}}\n"
        for scenario in (named, step):
            result = await _timeline(stack, csrf, scenario)
            assert "name no file here; write the catalog inline" in result, result
            assert "tgop_the_operator_key_itself" not in result
            assert "root:" not in result  # /etc/passwd
            assert "No such file" not in result  # no oracle for what exists
            assert str(tmp_path) not in result  # nor where anything is


async def test_a_run_gets_no_setting_or_secret_of_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLGATE_SECRETS_KEY", "sealing-key-of-the-server")
    monkeypatch.setenv("TOLLGATE_DATABASE_URL", "postgresql://secret@db/live")
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/live")
    show = "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))"
    monkeypatch.setattr(timeline_runs, "PROGRAM", (sys.executable, "-c", show))
    result = await timeline_runs.simulate_in_sandbox("name: x\n")
    seen = json.loads(result["output"])
    assert set(seen["env"]) <= {*timeline_runs.PASSED_ON, "HOME", "TMPDIR", "LC_CTYPE"}
    assert seen["env"]["HOME"] == seen["cwd"] != os.getcwd()
    assert "sealing-key-of-the-server" not in result["output"]
    assert not await asyncio.to_thread(os.path.exists, seen["cwd"])  # its scratch is gone


def test_a_run_that_uses_too_much_cpu_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(EXAMPLE)
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "tollgate.cli", "simulate", "s.yaml", "--inline-only",
         "--cpu-seconds", "1"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert finished.returncode == -signal.SIGXCPU, finished.stderr.decode()[-2000:]
    assert time.monotonic() - started < 60


async def test_an_oversized_body_is_a_413_on_every_kind_of_endpoint(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    big = b'{"name": "' + b"x" * 70_000 + b'"}'

    async def chunked() -> Any:  # no Content-Length: the size is only known as it arrives
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    posts = {
        "/v1/accounts": tenant.admin,
        f"/v1/providers/sandbox/webhooks/{tenant.id}": {},
        f"/v1/stripe/webhooks/{tenant.id}": {},
    }
    for path, headers in posts.items():
        for body in (big, chunked()):
            response = await stack.api.post(path, data=body, headers=headers)
            problem = await _problem(response, 413)
            assert problem["code"] == "body_too_large", path
            assert "65536" in problem["detail"], problem
    catalog = b"effective_date: 2027-01-01\n#" + b"x" * (1024 * 1024)
    response = await stack.api.put("/v1/catalog", data=io.BytesIO(catalog), headers=tenant.admin)
    assert (await _problem(response, 413))["code"] == "body_too_large"
    spec = await (await stack.api.get("/openapi.json")).json()
    assert "413" in spec["paths"]["/v1/accounts"]["post"]["responses"]


async def test_only_the_operator_moves_the_shared_test_clock(stack: Stack) -> None:
    acme, globex = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    before = await (await stack.api.get("/v1/test/clock", headers=globex.admin)).json()
    for body in ({"advance_days": 40}, {"set_to": "2020-01-01T00:00:00Z"}, {"reset": True}):
        refused = await stack.api.post("/v1/test/clock", json=body, headers=acme.admin)
        problem = await _problem(refused, 403)
        assert "operator" in problem["detail"], problem
    after = await (await stack.api.get("/v1/test/clock", headers=globex.admin)).json()
    assert after["offset_seconds"] == before["offset_seconds"]  # nobody's time moved
    moved = await stack.api.post(
        "/v1/test/clock", json={"advance_days": 1, "settle": False}, headers=stack.operator
    )
    assert moved.status == 200
    assert (await moved.json())["offset_seconds"] == before["offset_seconds"] + 86_400


async def _console_cookie(stack: Stack, tenant: Tenant, **headers: str) -> str:
    """The Set-Cookie of a console sign-in made with ``headers``."""
    page = await stack.api.get("/console/sign-in", headers=headers)
    token = re.search(r'name="form_token" value="([^"]+)"', await page.text())
    assert token is not None
    # what a browser on https sends back (the client's jar keeps Secure cookies from http)
    form_cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    key = tenant.admin["Authorization"].removeprefix("Bearer ")
    answer = await stack.api.post(
        "/console/sign-in", data={"form_token": token[1], "key": key},
        headers={**headers, "Cookie": form_cookie}, allow_redirects=False,
    )  # fmt: skip
    assert answer.status == 303, await answer.text()
    return next(v for v in answer.headers.getall("Set-Cookie") if "tollgate_console=" in v)


async def test_behind_a_tls_proxy_the_console_cookie_is_secure(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    forwarded = await _console_cookie(stack, tenant, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in forwarded
    assert "HttpOnly" in forwarded
    assert "SameSite=Strict" in forwarded
    assert "Secure" not in await _console_cookie(stack, tenant)  # plain HTTP, no proxy


@pytest.mark.untrusted_proxy
async def test_a_forwarded_scheme_from_an_untrusted_peer_is_ignored(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    cookie = await _console_cookie(stack, tenant, **{"X-Forwarded-Proto": "https"})
    assert "Secure" not in cookie


async def test_a_request_that_would_bill_years_at_once_is_refused_before_it_works(
    stack: Stack,
) -> None:
    tenant, other = await stack.new_tenant(), await stack.new_tenant("Neighbour")
    today = datetime.now(UTC).date()
    start = today - timedelta(days=3640)  # inside the date window: a daily plan ten years back
    catalog = (
        f"effective_date: {start}\ncurrencies: [USD]\nproducts: {{pro: {{category: base}}}}\n"
        "plans:\n  pro-daily:\n    product: pro\n    billing_period: daily\n    phases:\n"
        '      - {type: evergreen, recurring: {USD: "1.00"}}\n'
    )
    uploaded = await stack.api.put("/v1/catalog", data=catalog, headers=tenant.admin)
    assert uploaded.status in (200, 201), await uploaded.text()
    account = await stack.post("/v1/accounts", tenant, {"name": "Old customer"})
    refused, neighbour = await asyncio.gather(
        stack.api.post(
            f"/v1/accounts/{account['id']}/subscriptions",
            json={"plan": "pro-daily", "start_date": start.isoformat()}, headers=tenant.admin,
        ),
        stack.api.get("/v1/tenant", headers=other.admin),
    )  # fmt: skip
    problem = await _problem(refused, 422)
    assert problem["code"] == "too_much_at_once"
    assert "3,641 invoice(s)" in problem["detail"]
    assert "billing_start" in problem["detail"]  # what to do instead
    assert neighbour.status == 200
    # nothing was written: no subscription, no invoice
    subs = await stack.api.get(f"/v1/accounts/{account['id']}/subscriptions", headers=tenant.admin)
    assert (await subs.json())["data"] == []
    # entitlement may start back then while billing starts within what a request bills
    accepted = await stack.api.post(
        f"/v1/accounts/{account['id']}/subscriptions",
        json={"plan": "pro-daily", "entitlement_start": start.isoformat(),
              "billing_start": (today - timedelta(days=30)).isoformat()},
        headers=tenant.admin,
    )  # fmt: skip
    assert accepted.status == 201, await accepted.text()


@pytest.mark.short_requests
async def test_a_request_waits_for_the_database_only_so_long(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    sessions = stack.api.app[SESSIONS]
    async with sessions() as held, held.begin():
        # another transaction holds the tenant's row (and, on SQLite, the writer's turn)
        await held.execute(update(TenantRow).where(TenantRow.id == tenant.id).values(grace_days=7))
        waited = await stack.api.patch("/v1/tenant", json={"grace_days": 3}, headers=tenant.admin)
        problem = await _problem(waited, 503)
        assert problem["code"] == "busy"
        assert "TOLLGATE_REQUEST_SECONDS" in problem["detail"]
        assert waited.headers["Retry-After"] == "1"
    after = await stack.api.patch("/v1/tenant", json={"grace_days": 3}, headers=tenant.admin)
    assert after.status == 200
    assert (await after.json())["grace_days"] == 3


async def test_a_search_matches_what_was_typed_not_a_pattern(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for name in ("100% Uptime Ltd", "Snake_case Inc", "Plain Co"):
        await stack.post("/v1/accounts", tenant, {"name": name})
    await _console(stack, tenant)
    for typed, found in (("%", "100% Uptime Ltd"), ("_", "Snake_case Inc")):
        page = await stack.api.get("/console/accounts", params={"q": typed})
        text = html.unescape(await page.text())
        assert found in text, typed
        assert "Plain Co" not in text, typed  # a wildcard would have matched every account


async def test_another_tenants_timeline_run_is_not_found(stack: Stack) -> None:
    acme, globex = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    csrf = await _console(stack, acme)
    answer = await stack.api.post(
        "/console/timeline", data={"csrf": csrf, "scenario": "name: only acme's\n"}
    )
    run = answer.url.path
    assert run.startswith("/console/timeline/runs/"), run
    assert (await stack.api.get(run)).status == 200  # its own tenant sees it
    await _console(stack, globex)  # the same browser, signed in as another tenant
    assert (await stack.api.get(run)).status == 404


@pytest.mark.no_sealing_key
async def test_a_provider_secret_is_never_stored_in_plain_text(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    literal = {
        "stripe_secret_key": "sk_live_reallysecret1234",
        "stripe_webhook_secret": "whsec_x1234567890",
    }
    refused = await stack.api.patch("/v1/tenant", json=literal, headers=tenant.admin)
    fields = _fields(await _problem(refused, 422))
    assert set(fields) == {"stripe_secret_key", "stripe_webhook_secret"}
    assert "TOLLGATE_SECRETS_KEY" in fields["stripe_secret_key"]
    assert "env:NAME" in fields["stripe_secret_key"]
    after = await (await stack.api.get("/v1/tenant", headers=tenant.admin)).json()
    assert after["stripe_configured"] is False  # nothing was kept
