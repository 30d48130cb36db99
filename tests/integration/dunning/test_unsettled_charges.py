"""Charges whose answer was lost: never made twice, never holding collection back forever.

The provider here keeps idempotency keys 23 hours and cannot place a charge without the
reference it answered, as Stripe does: within the key's lifetime the reconciler repeats
the charge under its own key (the provider answers with the first, never a second charge);
past it, or with the outcome still unknown after three days, the account is parked with
what to look up, an ``account.parked`` event and a metric say so, and releasing it gives the
charge up so collection goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import PaymentAttempt
from billing_worker.ids import new_id
from billing_worker.payments.providers import ChargeResult, Outcome, SandboxProvider
from billing_worker.payments.reconciliation import reconcile
from shared.clock import SystemClock
from shared.money import Money
from tests.integration.conftest import Stack
from tests.integration.dunning.test_collection_crash import _get, _owing


class ForgetfulProvider(SandboxProvider):
    """The sandbox as Stripe behaves: keys kept 23 hours, no lookup without a reference;
    a reference ``pi_processing`` is a charge still processing. Counts the charges made."""

    key_lifetime = timedelta(hours=23)

    def __init__(self) -> None:
        super().__init__()
        self.made: list[str] = []

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        if idempotency_key not in self._charges:
            self.made.append(idempotency_key)
        return await super().charge(token, amount, idempotency_key)

    async def lookup(
        self, idempotency_key: str, *, reference: str | None = None
    ) -> ChargeResult | None:
        if reference == "pi_processing":
            return ChargeResult(Outcome.UNKNOWN, "processing", reference=reference)
        return None


async def test_a_lost_answer_is_repeated_while_the_key_lives_and_parked_after(
    stack: Stack, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    await stack.post(
        "/v1/plans", tenant, {"code": "pro", "name": "Pro", "currency": "USD", "amount": "20.00"}
    )
    fresh, fresh_card = await _owing(stack, tenant, "Lost an hour ago")
    stale, stale_card = await _owing(stack, tenant, "Lost yesterday")
    slow, slow_card = await _owing(stack, tenant, "Processing for days")
    now = datetime.now(UTC)
    # What a collector that crashed (or timed out) left behind, last asked about now (the
    # stack's own reconciler waits its TOLLGATE_RECONCILE_AFTER before asking again).
    attempts = {
        fresh: (fresh_card, now - timedelta(hours=1), "pending", None),
        stale: (stale_card, now - timedelta(hours=25), "pending", None),
        slow: (slow_card, now - timedelta(days=3, hours=1), "unknown", "pi_processing"),
    }
    keys = {account: f"col_{account}_lost_{card}" for account, (card, *_r) in attempts.items()}
    provider = ForgetfulProvider()
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            for account, (card, made, status, reference) in attempts.items():
                session.add(
                    PaymentAttempt(
                        id=new_id("att"), tenant_id=tenant.id, account_id=account,
                        payment_method_id=card, idempotency_key=keys[account],
                        amount_minor=2000, currency="USD", status=status, hard=False,
                        reference=reference, created_at=made, updated_at=now,
                    )
                )  # fmt: skip
        for _ in range(2):  # a restarted worker reconciles again: nothing changes
            await reconcile(sessions, (provider,), SystemClock(), after=timedelta(0))
    finally:
        await engine.dispose()

    # within the key's lifetime: charged under its own key, once, and settled
    assert provider.made == [keys[fresh]]
    assert (await _get(stack, tenant, f"/v1/accounts/{fresh}"))["balance_due"] == "0.00"
    # past it, or unknown for three days: parked with what to look up, charged never
    for account, words in ((stale, "no longer keeps its key"), (slow, "still unknown")):
        found = await _get(stack, tenant, f"/v1/accounts/{account}")
        assert found["parked"]["job"] == "collector", found
        assert words in found["parked"]["error"]
        assert keys[account] in found["parked"]["error"]
        assert found["balance_due"] == "20.00"
    events = (await _get(stack, tenant, "/v1/events?limit=100"))["data"]
    parked = sorted(e["account_id"] for e in events if e["type"] == "account.parked")
    assert parked == sorted((stale, slow))
    metrics = await (await stack.api.get("/metrics")).text()
    assert "tollgate_worker_parked_accounts 2.0" in metrics
    assert "tollgate_worker_unsettled_charges 2.0" in metrics

    # The tenant looked the charge up (it was never made) and releases the account: the
    # charge is given up and collection may go on.
    released = await stack.api.post(f"/v1/accounts/{stale}/release", headers=tenant.admin)
    assert released.status == 200, await released.text()
    assert (await released.json())["parked"] is None
    tried = (await _get(stack, tenant, f"/v1/accounts/{stale}/payment-attempts"))["data"]
    assert [(a["status"], a["reason"]) for a in tried] == [("failed", "given_up")]
    events = (await _get(stack, tenant, "/v1/events?limit=100"))["data"]
    assert [e["account_id"] for e in events if e["type"] == "account.released"] == [stale]
    metrics = await (await stack.api.get("/metrics")).text()
    assert "tollgate_worker_parked_accounts 1.0" in metrics
