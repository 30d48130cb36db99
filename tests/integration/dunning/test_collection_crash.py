"""The collector and the queue under failure: a worker that dies between storing a charge
and recording its answer charges nothing twice (the reconciler asks the provider under the
attempt's own key, and charges with that key only if the provider never saw it); events
that must wait do not hold up the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import (
    Account,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
)
from billing_worker.db.models import Tenant as TenantRow
from billing_worker.ids import new_id
from billing_worker.payments.payment_queue import RECEIVED, REFUNDED, drain
from billing_worker.payments.providers import ChargeResult, SandboxProvider
from billing_worker.payments.reconciliation import reconcile
from shared.clock import SystemClock
from shared.money import Money
from tests.integration.conftest import Stack, Tenant


class CountingSandbox(SandboxProvider):
    """The sandbox, counting the charges it really makes (a repeated key is not one)."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[str] = []

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        if await self.lookup(idempotency_key) is None:
            self.made.append(idempotency_key)
        return await super().charge(token, amount, idempotency_key)


async def _owing(stack: Stack, tenant: Tenant, name: str) -> tuple[str, str]:
    """An account owing 20.00 that the worker's own collector leaves alone (manual
    collection), with a card; returns the account and card ids."""
    account = await stack.post("/v1/accounts", tenant, {"name": name, "collection": "manual"})
    card = await stack.post(
        f"/v1/accounts/{account['id']}/payment-methods", tenant, {"token": "tok_sandbox_success"}
    )
    await stack.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, {"plan": "pro"})
    return str(account["id"]), str(card["id"])


async def _get(stack: Stack, tenant: Tenant, path: str) -> Any:
    response = await stack.api.get(path, headers=tenant.admin)
    assert response.status == 200
    return await response.json()


async def test_a_crash_before_or_after_the_charge_bills_once(
    stack: Stack, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    await stack.post(
        "/v1/plans", tenant, {"code": "pro", "name": "Pro", "currency": "USD", "amount": "20.00"}
    )
    before, before_card = await _owing(stack, tenant, "Crashed before charging")
    after, after_card = await _owing(stack, tenant, "Crashed after charging")
    provider, clock = CountingSandbox(), SystemClock()
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        # What a collector leaves behind when it dies after step 1 (the attempt stored,
        # pending) -- before calling the provider, or after it charged.
        keys = {}
        async with sessions() as session, session.begin():
            for account, card in ((before, before_card), (after, after_card)):
                keys[account] = f"col_{account}_crash_{card}"
                session.add(
                    PaymentAttempt(
                        id=new_id("att"), tenant_id=tenant.id, account_id=account,
                        payment_method_id=card, idempotency_key=keys[account],
                        amount_minor=2000, currency="USD", status="pending", hard=False,
                        created_at=clock.now(), updated_at=clock.now(),
                    )
                )  # fmt: skip
        await provider.charge("tok_sandbox_success", Money.parse("20.00", "USD"), keys[after])

        for _ in range(3):  # a restarted worker, reconciling again and again
            await reconcile(sessions, (provider,), clock, after=timedelta(0))
    finally:
        await engine.dispose()

    assert sorted(provider.made) == sorted(keys.values())  # one real charge each
    for account in (before, after):
        payments = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]
        assert [p["amount"] for p in payments] == ["20.00"], account
        attempts = (await _get(stack, tenant, f"/v1/accounts/{account}/payment-attempts"))["data"]
        assert [a["status"] for a in attempts] == ["succeeded"]
        found = await _get(stack, tenant, f"/v1/accounts/{account}")
        assert (found["balance_due"], found["standing"]) == ("0.00", "active")


async def test_events_that_wait_do_not_hold_up_the_queue(database_url: str) -> None:
    """Refunds whose charge is not applied yet wait; a payment queued after more of them
    than one batch holds is still applied."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    clock = SystemClock()
    now = clock.now()
    try:
        async with sessions() as session, session.begin():
            session.add(TenantRow(id="ten_q", name="Queue", grace_days=30, net_terms_days=0,
                                  created_at=now))  # fmt: skip
            await session.flush()
            session.add(
                Account(id="acc_q", tenant_id="ten_q", name="Q", kind="consumer",
                        currency="USD", net_terms_days=0, credit_minor=0, standing="active",
                        standing_reason="in_good_standing", ent_version=0, created_at=now)
            )  # fmt: skip
            await session.flush()
            common = {"tenant_id": "ten_q", "account_id": "acc_q", "currency": "USD",
                      "occurred_at": now, "received_at": now, "hard": False}  # fmt: skip
            session.add(PaymentMethod(id="pm_q", tenant_id="ten_q", account_id="acc_q",
                                      provider="sandbox", token="tok_sandbox_timeout",
                                      is_default=True, created_at=now))  # fmt: skip
            await session.flush()
            for n in range(5):  # charges whose outcome is not known yet
                session.add(PaymentAttempt(id=f"att_q{n}", tenant_id="ten_q", account_id="acc_q",
                                           payment_method_id="pm_q",
                                           idempotency_key=f"col_never_{n}", amount_minor=100,
                                           currency="USD", status="unknown", hard=False,
                                           created_at=now, updated_at=now))  # fmt: skip
            await session.flush()
            for n in range(5):
                session.add(PaymentEvent(key=f"provider:evt_{n}", source="webhook",
                                         type=REFUNDED, attempt_key=f"col_never_{n}",
                                         amount_minor=100, method="card", **common))  # fmt: skip
            session.add(PaymentEvent(key="manual:1", source="manual", type=RECEIVED,
                                     amount_minor=2500, method="wire", **common))  # fmt: skip
        assert await drain(sessions, clock, batch=2) == 1
        async with sessions() as session:
            payments = (await session.scalars(select(Payment.amount_minor))).all()
            waiting = await session.scalar(
                select(func.count()).where(PaymentEvent.applied_at.is_(None))
            )
        assert list(payments) == [2500]
        assert waiting == 5
    finally:
        await engine.dispose()
