"""No log level prints a secret: the worker and the gateway run at DEBUG while keys, webhook
secrets, Stripe keys and sessions are made and used, and their logs hold none of them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import aiohttp
import pytest

from billing_worker.api.console.timeline_page import EXAMPLE
from tests.e2e.conftest import OPERATOR, Processes
from tests.integration.conftest import SECRETS_KEY

STRIPE_KEY = "sk_test_" + "SecretStripeKey4242" * 2
STRIPE_HOOK = "whsec_" + "SecretStripeHookSecret42"


@pytest.fixture
def process_env() -> dict[str, str]:
    # a sealing key, as in production: without one a literal Stripe key is refused
    return {"TOLLGATE_LOG_LEVEL": "DEBUG", "TOLLGATE_SECRETS_KEY": SECRETS_KEY}


async def test_debug_logs_hold_no_key_or_secret(processes: Processes, tmp_path: Path) -> None:
    secrets: list[str] = [OPERATOR]
    operator = {"Authorization": f"Bearer {OPERATOR}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{processes.api}/v1/tenants", json={"name": "Logs"}, headers=operator
        ) as answer:
            assert answer.status == 201, await answer.text()
            tenant = await answer.json()
        admin = {"Authorization": f"Bearer {tenant['admin_key']}"}
        gateway = {"Authorization": f"Bearer {tenant['gateway_key']}"}
        secrets += [tenant["admin_key"], tenant["gateway_key"], STRIPE_KEY, STRIPE_HOOK]
        async with http.patch(
            f"{processes.api}/v1/tenant",
            json={"stripe_secret_key": STRIPE_KEY, "stripe_webhook_secret": STRIPE_HOOK},
            headers=admin,
        ) as answer:
            assert answer.status == 200, await answer.text()
        async with http.post(
            f"{processes.api}/v1/webhook-endpoints",
            json={"url": "https://hooks.example.com/t"},
            headers=admin,
        ) as answer:
            assert answer.status == 201, await answer.text()
            secrets.append((await answer.json())["secret"])
        async with http.post(
            f"{processes.api}/v1/accounts", json={"name": "Ann"}, headers=admin
        ) as answer:
            assert answer.status == 201, await answer.text()
            account = (await answer.json())["id"]
        async with http.post(
            f"{processes.api}/v1/accounts/{account}/users",
            json={"external_id": "ann"},
            headers=admin,
        ) as answer:
            assert answer.status == 201, await answer.text()
        catalog = EXAMPLE[EXAMPLE.index("catalog:") : EXAMPLE.index("accounts:")]
        catalog = textwrap.dedent(catalog.removeprefix("catalog:\n"))
        async with http.put(f"{processes.api}/v1/catalog", data=catalog, headers=admin) as answer:
            assert answer.status in (200, 201), await answer.text()
        async with http.post(
            f"{processes.api}/v1/accounts/{account}/subscriptions",
            json={"plan": "pro-monthly"},
            headers=admin,
        ) as answer:
            assert answer.status == 201, await answer.text()
        async with http.post(
            f"{processes.gateway}/v1/sessions", json={"user": "ann"}, headers=gateway
        ) as answer:
            assert answer.status == 201, await answer.text()
            secrets.append((await answer.json())["token"])
        async with http.post(
            f"{processes.gateway}/v1/authorize", json={"user": "ann"}, headers=gateway
        ) as answer:
            assert answer.status == 200, await answer.text()
    logs = {name: (tmp_path / name).read_text() for name in ("worker.log", "gateway.log")}
    assert "view.rebuilt" in logs["worker.log"]  # the log is there to read
    for name, text in logs.items():
        for secret in secrets:
            # a key's id may be named; its secret part never
            assert secret.split(".")[-1] not in text, (name, secret[:12])
