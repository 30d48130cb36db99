"""Seeds the demo tenant through the management API, as a tenant's own code would."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp


@dataclass(frozen=True, kw_only=True, slots=True)
class Demo:
    tenant_id: str
    admin_key: str
    gateway_key: str
    allowed_user: str
    denied_user: str
    accounts: dict[str, str]


class SeedError(RuntimeError):
    """The management API refused a demo request."""


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, key: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with http.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        payload: dict[str, Any] = await response.json(content_type=None)
        if response.status >= 400:
            raise SeedError(f"{method} {url} -> {response.status}: {payload}")
        return payload


async def seed_demo(api_url: str, operator_key: str) -> Demo:
    """A tenant, a plan, three accounts and their users.

    ``acme`` is paid up (its users are allowed); ``globex`` subscribed 45 days ago and
    never paid, so its users are denied (suspended); ``initech`` is an enterprise
    account with a 5-seat plan and an invoice still within its grace period.
    """
    async with aiohttp.ClientSession() as http:
        tenant = await _call(
            http, "POST", f"{api_url}/v1/tenants", operator_key, {"name": "Demo SaaS Inc."}
        )
        admin = tenant["admin_key"]
        await _call(http, "POST", f"{api_url}/v1/plans", admin, {
            "code": "pro", "name": "Pro (monthly)", "currency": "USD", "amount": "49.00",
            "features": ["reports", "api"],
        })  # fmt: skip
        await _call(http, "POST", f"{api_url}/v1/plans", admin, {
            "code": "team-5", "name": "Team, 5 seats", "currency": "USD", "amount": "199.00",
            "features": ["reports", "api", "sso"], "seat_limit": 5,
        })  # fmt: skip
        try:  # in test mode the demo's history follows the shared test clock
            clock = await _call(http, "GET", f"{api_url}/v1/test/clock", admin)
            now = datetime.fromisoformat(clock["now"]).astimezone(UTC)
        except SeedError:
            now = datetime.now(UTC)
        accounts: dict[str, str] = {}
        stories = [
            ("acme", "consumer", "pro", now, ["alice@acme.test"], "49.00"),
            ("globex", "consumer", "pro", now - timedelta(days=45), ["bob@globex.test"], None),
            ("initech", "enterprise", "team-5", now - timedelta(days=10),
             ["carol@initech.test", "dave@initech.test"], None),
        ]  # fmt: skip
        for name, kind, plan, start, users, paid in stories:
            account = await _call(http, "POST", f"{api_url}/v1/accounts", admin, {
                "name": name.title(), "external_id": name, "kind": kind,
                "email": f"billing@{name}.test",
            })  # fmt: skip
            base = f"{api_url}/v1/accounts/{account['id']}"
            accounts[name] = account["id"]
            for user in users:
                await _call(http, "POST", f"{base}/users", admin, {"external_id": user})
            await _call(http, "POST", f"{base}/subscriptions", admin, {
                "plan": plan, "start_at": start.isoformat(),
            })  # fmt: skip
            if paid:
                await _call(http, "POST", f"{base}/payments", admin, {
                    "amount": paid, "currency": "USD", "method": "wire", "reference": "demo",
                })  # fmt: skip
        return Demo(
            tenant_id=tenant["id"],
            admin_key=admin,
            gateway_key=tenant["gateway_key"],
            allowed_user="alice@acme.test",
            denied_user="bob@globex.test",
            accounts=accounts,
        )


def save_demo(demo: Demo, path: Path) -> None:
    path.write_text(json.dumps(asdict(demo), indent=2))
    path.chmod(0o600)


def load_demo(path: Path) -> Demo | None:
    try:
        return Demo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
