"""Rows to response bodies, in one place."""

from __future__ import annotations

from billing_worker.api import schemas
from billing_worker.db.models import Account, Invoice, Payment, Plan, Subscription, Tenant, User
from shared.money import Money


def money(minor: int, currency: str) -> str:
    return Money.from_minor(minor, currency).format()


def account_view(account: Account, balance_due_minor: int) -> schemas.AccountOut:
    return schemas.AccountOut(
        id=account.id,
        external_id=account.external_id,
        name=account.name,
        email=account.email,
        kind=account.kind,
        currency=account.currency,
        net_terms_days=account.net_terms_days,
        standing=account.standing,
        standing_reason=account.standing_reason,
        valid_until=account.valid_until,
        balance_due=money(balance_due_minor, account.currency),
        credit=money(account.credit_minor, account.currency),
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
    )


def plan_view(plan: Plan) -> schemas.PlanOut:
    return schemas.PlanOut(
        id=plan.id,
        code=plan.code,
        name=plan.name,
        currency=plan.currency,
        amount=money(plan.amount_minor, plan.currency),
        interval="month",
        features=list(plan.features),
        seat_limit=plan.seat_limit,
        session_policy=plan.session_policy,
    )


def user_view(user: User) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.id,
        external_id=user.external_id,
        account_id=user.account_id,
        email=user.email,
        status=user.status,
    )


def subscription_view(sub: Subscription, plan: Plan) -> schemas.SubscriptionOut:
    return schemas.SubscriptionOut(
        id=sub.id,
        account_id=sub.account_id,
        plan=plan.code,
        status=sub.status,
        started_at=sub.started_at,
        next_billing_at=sub.next_billing_at,
    )


def invoice_view(inv: Invoice) -> schemas.InvoiceOut:
    return schemas.InvoiceOut(
        id=inv.id,
        subscription_id=inv.subscription_id,
        period_start=inv.period_start,
        period_end=inv.period_end,
        issued_at=inv.issued_at,
        due_at=inv.due_at,
        currency=inv.currency,
        total=money(inv.total_minor, inv.currency),
        paid=money(inv.paid_minor, inv.currency),
        balance=money(inv.total_minor - inv.paid_minor, inv.currency),
        status=inv.status,
    )


def payment_view(payment: Payment, account: schemas.AccountOut) -> schemas.PaymentOut:
    return schemas.PaymentOut(
        id=payment.id,
        account_id=payment.account_id,
        amount=money(payment.amount_minor, payment.currency),
        currency=payment.currency,
        method=payment.method,
        reference=payment.reference,
        received_at=payment.received_at,
        account=account,
    )
