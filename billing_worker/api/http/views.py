"""Rows to response bodies, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http import schemas
from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Payment,
    PaymentAttempt,
    Subscription,
    Tenant,
    User,
)
from billing_worker.domain.invoicing import Item
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.domain.subscriptions import Pause, overrides_on, plan_on, quantity_on
from billing_worker.invoicing.terms import override_rows, terms_of
from billing_worker.services.accounts import balance_due
from billing_worker.services.invoices import Billed
from billing_worker.services.settling import Settled
from billing_worker.standing.evaluation import Evaluation
from shared.money import Money


def money(minor: int, currency: str) -> str:
    return Money.from_minor(minor, currency).format()


def account_view(account: Account, balance_due_minor: int) -> schemas.AccountOut:
    return schemas.AccountOut(
        id=account.id,
        external_id=account.external_id,
        name=account.name,
        email=account.email,
        billing_address=account.billing_address.splitlines() if account.billing_address else None,
        kind=account.kind,
        currency=account.currency,
        net_terms_days=account.net_terms_days,
        timezone=account.timezone,
        cycle_day=account.cycle_day,
        parent_id=account.parent_id,
        payment_delegated=account.payment_delegated,
        price_list=account.price_list,
        standing=account.standing,
        standing_reason=account.standing_reason,
        valid_until=account.valid_until,
        balance_due=money(balance_due_minor, account.currency),
        credit=money(account.credit_minor, account.currency),
        collection=account.collection,
        invoicing=account.invoicing,
        dunning_policy=account.dunning_policy,
        dunning_exempt=account.dunning_exempt,
        suspended_manually=account.suspended_manually,
        parked=None
        if account.parked_at is None
        else schemas.Parked(
            at=account.parked_at, job=account.parked_job, error=account.parked_error or ""
        ),
        created_at=account.created_at,
    )


def tenant_view(tenant: Tenant) -> schemas.TenantOut:
    return schemas.TenantOut(
        id=tenant.id,
        name=tenant.name,
        grace_days=tenant.grace_days,
        net_terms_days=tenant.net_terms_days,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
        degraded_read_only=tenant.degraded_read_only,
        draft_invoices=tenant.draft_invoices,
        zero_amount_invoices=tenant.zero_amount_invoices,
        summary_commit_time=tenant.summary_commit_time,
        channel_overdue=tenant.channel_overdue,
        notify_webhook_url=tenant.notify_webhook_url,
        notify_emails=list(tenant.notify_emails or ()),
        notify_customer=tenant.notify_customer,
        stripe_configured=tenant.stripe_secret_key is not None,
        stripe_webhooks_configured=tenant.stripe_webhook_secret is not None,
    )


def user_view(user: User) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.id,
        external_id=user.external_id,
        account_id=user.account_id,
        email=user.email,
        status=user.status,
    )


def subscription_view(sub: Subscription, today: date, phase: str | None) -> schemas.SubscriptionOut:
    terms = terms_of(sub)
    if terms.entitlement_end <= today and terms.billing_end <= today:
        status = "cancelled"
    elif any(today in p.span for p in terms.pauses):
        status = "paused"
    elif today < terms.entitlement_start:
        status = "future"
    elif terms.cancellation is not None:
        status = "pending_cancellation"
    else:
        status = "active"
    pending = [
        {"type": "change", "effective": c.effective.isoformat(), "plan": c.plan}
        for c in terms.changes
        if c.effective > today
    ] + [
        {"type": "quantity", "effective": q.effective.isoformat(), "quantity": str(q.quantity)}
        for q in terms.quantities
        if q.effective > today
    ]
    current_plan, current_list = plan_on(terms, today)
    return schemas.SubscriptionOut(
        id=sub.id,
        account_id=sub.account_id,
        base_subscription_id=sub.base_id,
        plan=current_plan,
        price_list=current_list,
        quantity=quantity_on(terms, today),
        status=status,
        entitlement_start=sub.entitlement_start,
        billing_start=sub.billing_start,
        entitlement_end=sub.entitlement_end,
        billing_end=sub.billing_end,
        phase=phase,
        pauses=[_span(p) for p in terms.pauses],
        price_overrides=override_rows(overrides_on(terms, today)) or [],
        billing_holds=[_span(h) for h in terms.holds],
        pending_changes=pending,
    )


def _span(pause: Pause) -> dict[str, str | None]:
    return {"start": pause.start.isoformat(),
            "resume": pause.resume.isoformat() if pause.resume else None}  # fmt: skip


def item_view(item: Item | InvoiceItem) -> schemas.InvoiceItemOut:
    if isinstance(item, InvoiceItem):
        return schemas.InvoiceItemOut(
            id=item.id,
            kind=item.kind,
            subscription_id=item.subscription_id,
            plan=item.plan,
            phase=item.phase,
            start_date=item.start_date,
            end_date=item.end_date,
            quantity=item.quantity,
            amount=money(item.amount_minor, item.currency),
            linked_item_id=item.linked_item_id,
        )
    return schemas.InvoiceItemOut(
        id=item.id,
        kind=item.kind.value,
        subscription_id=item.subscription_id,
        plan=item.plan,
        phase=item.phase.value if item.phase else None,
        start_date=item.span.start,
        end_date=item.span.end,
        quantity=item.quantity,
        amount=item.amount.format(),
        linked_item_id=item.linked_to,
    )


_CREDITS = ("credit_applied", "credit_generated")


def in_invoice_order(items: Iterable[InvoiceItem]) -> list[InvoiceItem]:
    """Charges and repairs by date, then the account-credit lines that balance them."""
    return sorted(items, key=lambda i: (i.kind in _CREDITS, i.start_date, i.kind, i.id))


def invoice_view(inv: Invoice, items: list[InvoiceItem]) -> schemas.InvoiceOut:
    return schemas.InvoiceOut(
        id=inv.id,
        number=display_number(inv.number),
        account_id=inv.account_id,
        invoice_date=inv.invoice_date,
        issued_at=inv.issued_at,
        due_at=inv.due_at,
        currency=inv.currency,
        total=money(inv.total_minor, inv.currency),
        paid=money(inv.paid_minor, inv.currency),
        # Only an open invoice is owed: a draft is not yet, a void or written-off one no longer.
        balance=money(
            inv.total_minor - inv.paid_minor if inv.status == InvoiceStatus.OPEN else 0,
            inv.currency,
        ),
        status=inv.status,
        items=[item_view(i) for i in in_invoice_order(items)],
    )


def payment_row(payment: Payment) -> schemas.PaymentRow:
    return schemas.PaymentRow(
        id=payment.id,
        account_id=payment.account_id,
        amount=money(payment.amount_minor, payment.currency),
        currency=payment.currency,
        method=payment.method,
        reference=payment.reference,
        received_at=payment.received_at,
        refunded=money(payment.refunded_minor or 0, payment.currency),
    )


def payment_view(payment: Payment, account: schemas.AccountOut) -> schemas.PaymentOut:
    return schemas.PaymentOut(**msgspec.structs.asdict(payment_row(payment)), account=account)


def attempt_view(attempt: PaymentAttempt) -> schemas.AttemptOut:
    return schemas.AttemptOut(
        id=attempt.id,
        payment_method_id=attempt.payment_method_id,
        idempotency_key=attempt.idempotency_key,
        amount=money(attempt.amount_minor, attempt.currency),
        currency=attempt.currency,
        status=attempt.status,
        reason=attempt.reason,
        hard=attempt.hard,
        created_at=attempt.created_at,
        updated_at=attempt.updated_at,
    )


def billed_view(billed: Billed) -> schemas.InvoicePreview | None:
    """What a change billed, with the paying account's credit after it."""
    if billed.invoice is None:
        return None
    invoice, payer = billed.invoice, billed.payer
    return schemas.InvoicePreview(
        invoice_date=invoice.invoice_date,
        currency=invoice.currency,
        items=[item_view(i) for i in in_invoice_order(billed.items)],
        total=money(invoice.total_minor, invoice.currency),
        credit_after=money(payer.credit_minor, payer.currency),
    )


def change_view(settled: Settled, *, dry_run: bool) -> schemas.ChangeOut:
    """A changed subscription and what the change billed (or would, on a dry run)."""
    return schemas.ChangeOut(
        subscription=subscription_view(settled.subscription, settled.today, settled.phase),
        invoice=billed_view(settled.billed),
        dry_run=dry_run,
    )


def dunning_view(account: Account, found: Evaluation) -> schemas.DunningOut:
    """Where the account stands on its ladder and what comes next."""
    ladder = found.result.dunning
    return schemas.DunningOut(
        account_id=account.id,
        standing=found.result.standing.value,
        reason=found.result.reason,
        policy=found.policy_name,
        days_past_due=ladder.days_past_due if ladder else 0,
        oldest_due_at=ladder.anchor if ladder else None,
        next_change_at=found.result.next_change_at,
        retry=ladder.retry if ladder else None,
        exempt=account.dunning_exempt,
        suspended_manually=account.suspended_manually,
        hard_declined=found.source.hard_declined,
        exempt_subscriptions=[s.id for s in found.subscriptions if s.dunning_exempt],
    )


async def account_out(session: AsyncSession, account: Account) -> schemas.AccountOut:
    """The account as the API shows it, with what it owes."""
    return account_view(account, await balance_due(session, account))
