"""What an attacker holding one tenant's keys tries (issue #29): every finding of the probe,
each answered with a clear 4xx and nothing read, leaked or held that should not be."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse

from tests.integration.conftest import Stack

#: Addresses no parser reads the same way twice, or at all.
BROKEN_URLS = (
    "http://[::1/x",  # a bracket left open: urlsplit raises
    "http://[::1]x/",  # junk after the bracket
    "https://hooks.example.com:99999/x",  # a port past 65535
    "https://hooks.example.com:-1/x",
    "http://user:secret@hooks.example.com/x",  # credentials in the address
)


async def _problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    return body


def _fields(problem: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in problem["errors"]}


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
