"""The Python client (clients/python) against a real `tollgate up`: authorize, the
management calls an application makes, sessions, and an ASGI and a WSGI application
protected by its middleware."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tollgate_client import (
    AsyncGateway,
    AsyncManagement,
    Gateway,
    Management,
    TollgateASGI,
    TollgateError,
    TollgateWSGI,
)

from tests.e2e.conftest import start_up, stop_up

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    process, banner = start_up(tmp_path_factory.mktemp("up") / "state")
    found = {
        name: re.search(rf"{label}\s+(\S+)", banner)
        for name, label in (("gateway", "gateway"), ("api", "management API"),
                            ("admin", "admin key"), ("gate", "gateway key"),
                            ("operator", "operator key"))
    }  # fmt: skip
    try:
        yield {name: match.group(1) for name, match in found.items() if match}
    finally:
        stop_up(process)


def test_authorize_and_the_management_calls(up: dict[str, str]) -> None:
    with Gateway(up["gateway"], up["gate"]) as gateway, Management(up["api"], up["admin"]) as api:
        allowed = gateway.authorize("alice@acme.test")
        assert (allowed.allow, allowed.standing) == (True, "active")
        assert allowed.features == ("reports", "api")
        denied = gateway.authorize("bob@globex.test")
        assert (denied.allow, denied.reason) == (False, "payment_overdue")
        assert gateway.authorize("alice@acme.test", feature="api").allow
        assert gateway.authorize("alice@acme.test", feature="sso").reason == (
            "feature_not_included"
        )

        account = api.create_account("Initech", external_id="initech-1")
        api.create_user(account["id"], "peter@initech.test")
        subscribed = api.subscribe(account["id"], "pro")
        assert subscribed["subscription"]["plan"] == "pro"
        with pytest.raises(TollgateError) as refused:
            api.subscribe(account["id"], "no-such-plan")
        assert refused.value.status == 422
        assert refused.value.problem["errors"][0]["field"] == "plan"
        assert api.account(account["id"])["balance_due"] == "49.00"


def test_sessions_and_a_protected_wsgi_application(up: dict[str, str]) -> None:
    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [f"hello {environ['tollgate']['user']}".encode()]

    with Gateway(up["gateway"], up["gate"]) as gateway:
        login = gateway.login("alice@acme.test")
        assert login.created
        assert login.token is not None
        assert login.session_id is not None
        refused = gateway.login("bob@globex.test")
        assert (refused.created, refused.reason) == (False, "payment_overdue")
        protected = TollgateWSGI(application, gateway)
        with httpx.Client(transport=httpx.WSGITransport(app=protected),
                          base_url="http://app") as browser:  # fmt: skip
            assert browser.get("/").status_code == 401  # no session
            browser.cookies.set("tollgate_session", login.token)
            page = browser.get("/reports")
            assert (page.status_code, page.text) == (200, "hello alice@acme.test")
            assert gateway.refresh(login.session_id)
            assert gateway.logout(login.session_id)
            assert browser.get("/reports").status_code == 401  # logged out
        assert not gateway.logout(login.session_id)  # already ended


async def test_the_async_client_and_a_protected_asgi_application(up: dict[str, str]) -> None:
    async def application(scope: Any, receive: Any, send: Any) -> None:
        user = scope["state"]["tollgate"]["user"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"hello {user}".encode()})

    async with (
        AsyncGateway(up["gateway"], up["gate"]) as gateway,
        AsyncManagement(up["api"], up["admin"]) as api,
    ):
        account = await api.create_account("Hooli")
        await api.create_user(account["id"], "gavin@hooli.test")
        await api.subscribe(account["id"], "pro")

        async def published() -> bool:
            return (await gateway.authorize("gavin@hooli.test")).allow

        for _ in range(50):
            if await published():
                break
            await asyncio.sleep(0.1)
        login = await gateway.login("gavin@hooli.test")
        assert login.token is not None
        protected = TollgateASGI(application, gateway)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=protected),
                                     base_url="http://app") as browser:  # fmt: skip
            anonymous = await browser.get("/")
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            page = await browser.get("/", headers={"Authorization": f"Bearer {login.token}"})
            assert (page.status_code, page.text) == (200, "hello gavin@hooli.test")


def test_a_protected_application_accepts_only_its_own_tenants_sessions(
    up: dict[str, str],
) -> None:
    """Another tenant's user, with a live session of that tenant, is no session here."""
    operator = {"Authorization": f"Bearer {up['operator']}"}
    created = httpx.post(f"{up['api']}/v1/tenants", json={"name": "Rival"}, headers=operator)
    rival = created.json()
    with (
        Management(up["api"], rival["admin_key"]) as api,
        Gateway(up["gateway"], rival["gateway_key"]) as rival_gateway,
        Gateway(up["gateway"], up["gate"]) as gateway,
    ):
        api_headers = {"Authorization": f"Bearer {rival['admin_key']}"}
        plan = {"code": "pro", "name": "Pro", "currency": "USD", "amount": "9.00"}
        assert httpx.post(f"{up['api']}/v1/plans", json=plan, headers=api_headers).is_success
        account = api.create_account("Mallory's")
        api.create_user(account["id"], "mallory@rival.test")
        api.subscribe(account["id"], "pro")
        for _ in range(50):
            login = rival_gateway.login("mallory@rival.test")
            if login.created:
                break
            time.sleep(0.1)
        assert login.token is not None
        assert rival_gateway.check(login.token).allowed  # at its own tenant's application
        assert gateway.tenant() != rival_gateway.tenant()
        assert gateway.check(login.token).status == 401  # the check is bound to the key
        protected = TollgateWSGI(lambda environ, start: [b"secret page"], gateway)
        with httpx.Client(transport=httpx.WSGITransport(app=protected),
                          base_url="http://app") as browser:  # fmt: skip
            browser.cookies.set("tollgate_session", login.token)
            assert browser.get("/").status_code == 401


def test_an_unreachable_gateway_is_closed_by_default_and_open_when_asked(
    up: dict[str, str],
) -> None:
    with Gateway(up["gateway"], up["gate"], fail_open_seconds=60) as gateway:
        assert gateway.authorize("alice@acme.test").allow  # seen allowed once
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing answers
    with Gateway(nowhere, up["gate"], timeout=0.5) as closed:
        refused = closed.authorize("alice@acme.test")
        assert (refused.allow, refused.reason) == (False, "unavailable")
    ticks = iter([0.0, 10.0, 100.0])
    with Gateway(
        up["gateway"], up["gate"], fail_open_seconds=60, clock=lambda: next(ticks)
    ) as open_:
        assert open_.authorize("alice@acme.test").allow  # at t=0, remembered
        open_._http.base_url = httpx.URL(nowhere)  # the gateway goes away
        stale = open_.authorize("alice@acme.test")  # t=10: within the 60 s allowed
        assert (stale.allow, stale.stale_seconds) == (True, 10.0)
        assert not open_.authorize("alice@acme.test").allow  # t=100: too old, closed again
        assert not open_.authorize("bob@globex.test").allow  # never seen allowed: closed
