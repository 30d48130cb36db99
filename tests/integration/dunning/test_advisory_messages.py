"""Advisory messages reach administrators by signed webhook and by email (a real SMTP
server, aiosmtpd), once per reminder day, and failed deliveries are retried and logged."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from billing_worker.notifications.signing import HEADER, verify
from tests.integration.conftest import Stack
from tests.integration.dunning.test_payment_queue import _customer, _get
from tollgate.redis_server import free_port


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def worker_env(smtp: tuple[Mailbox, int]) -> dict[str, str]:
    return {
        "TOLLGATE_SMTP_URL": f"smtp://127.0.0.1:{smtp[1]}",
        "TOLLGATE_MAIL_FROM": "billing@tollgate.test",
        # the test's webhook receivers listen on this machine
        "TOLLGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


@dataclass
class Receiver:
    url: str
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    hook = Receiver(url=f"http://127.0.0.1:{port}/tollgate")

    async def handle(request: web.Request) -> web.Response:
        if hook.fail_next:
            hook.fail_next -= 1
            return web.Response(status=503)
        hook.received.append((await request.read(), request.headers.get(HEADER)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/tollgate", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()


async def test_a_declined_card_is_reported_by_signed_webhook_and_email(
    stack: Stack, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    mailbox, _ = smtp
    mailbox.messages.clear()
    tenant = await stack.new_tenant(
        notify_webhook_url=receiver.url, notify_emails=["billing-admin@vendor.test"]
    )
    secret = tenant.webhook_secret
    receiver.fail_next = 1  # the first delivery fails and is retried
    account = await _customer(stack, tenant, "xia", "tok_sandbox_insufficient_funds")

    async def both_emails() -> bool:
        return len(mailbox.messages) >= 2

    await stack.eventually(both_emails, within=10)
    subjects = sorted(str(m["Subject"]) for m in mailbox.messages)
    assert subjects == [
        "Payment due: xia owes 31.00 (0 days past due)",
        "Payment failed for xia: insufficient_funds",
    ]
    for message in mailbox.messages:
        assert message["To"] == "billing-admin@vendor.test"
        assert message["From"] == "billing@tollgate.test"
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None
        assert html is not None
        assert account in text.get_content()
        assert "<table>" in html.get_content()

    # The webhook's first delivery got a 503: the log shows it, and a retry delivers it.
    async def one_failed_one_delivered() -> bool:
        messages = (await _get(stack, tenant, "/v1/messages"))["data"]
        hooks = [d for m in messages for d in m["deliveries"] if d["channel"] == "webhook"]
        return sorted((d["status"], d["last_error"], d["attempts"]) for d in hooks) == [
            ("delivered", None, 1),
            ("pending", "HTTP 503", 1),
        ]

    await stack.eventually(one_failed_one_delivered, within=10)
    assert len(receiver.received) == 1
    await stack.api.post("/v1/test/clock", json={"advance_seconds": 120}, headers=stack.operator)

    async def both_hooks() -> bool:
        return len(receiver.received) == 2

    await stack.eventually(both_hooks, within=10)
    kinds = set()
    for raw, header in receiver.received:
        verify(secret, header, raw, time.time())  # signed with the tenant's secret
        kinds.add(orjson.loads(raw)["type"])
    assert kinds == {"payment_due", "payment_failed"}

    # The receiver answers before the notifier records the delivery: wait for the log.
    async def all_delivered() -> bool:
        messages = (await _get(stack, tenant, "/v1/messages"))["data"]
        return all(d["status"] == "delivered" for m in messages for d in m["deliveries"])

    await stack.eventually(all_delivered, within=10)
    messages = (await _get(stack, tenant, "/v1/messages"))["data"]
    assert {
        d["attempts"] for m in messages for d in m["deliveries"] if d["channel"] == "webhook"
    } <= {
        1,
        2,
    }


async def test_one_reminder_per_day_however_often_the_account_is_evaluated(
    stack: Stack, smtp: tuple[Mailbox, int]
) -> None:
    tenant = await stack.new_tenant(notify_emails=["ops@vendor.test"])
    account = await _customer(stack, tenant, "yan", "tok_sandbox_insufficient_funds")
    await stack.api.post("/v1/test/settle", headers=tenant.admin)
    for name in ("Yan", "Yan Again", "Yan Once More"):  # each change re-evaluates the account
        response = await stack.api.patch(
            f"/v1/accounts/{account}", json={"name": name}, headers=tenant.admin
        )
        assert response.status == 200
        await stack.api.post("/v1/test/settle", headers=tenant.admin)
    messages = (await _get(stack, tenant, f"/v1/messages?account_id={account}"))["data"]
    assert sorted(m["kind"] for m in messages) == ["payment_due", "payment_failed"]

    await stack.api.post("/v1/test/clock", json={"advance_days": 1}, headers=stack.operator)
    await stack.api.post("/v1/test/settle", headers=tenant.admin)
    await stack.api.post("/v1/test/settle", headers=tenant.admin)
    messages = (await _get(stack, tenant, f"/v1/messages?account_id={account}"))["data"]
    # day 1: a second reminder, and the day-1 retry's failure
    assert sorted(m["kind"] for m in messages) == [
        "payment_due", "payment_due", "payment_failed", "payment_failed",
    ]  # fmt: skip
    other = await stack.new_tenant("Other")
    assert (await _get(stack, other, f"/v1/messages?account_id={account}"))["data"] == []
