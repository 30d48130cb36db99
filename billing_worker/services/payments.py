"""Payments: one received offline (check, wire) applied at once, to the invoices it names
first; the account's payments and the collector's attempts; a refund, through the provider
the money came from; and a payment provider's event, stored for the payment queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.locking import lock_with_parent
from billing_worker.db.models import (
    WITH_SECRETS,
    Account,
    Invoice,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    Refund,
    Tenant,
)
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.invoicing.ledger import RefundError
from billing_worker.invoicing.refunds import check_refund, refund_payment
from billing_worker.payments.book import ProviderBook
from billing_worker.payments.collection import provider_named
from billing_worker.payments.payment_queue import RECEIVED, apply_event, charge_event, enqueue
from billing_worker.payments.providers import Outcome, PaymentProvider
from billing_worker.runtime.turns import Turns
from billing_worker.services.amounts import parse_amount
from billing_worker.services.errors import Conflict, FieldError, InvalidRequest, NotFound
from billing_worker.services.families import lock_account_now
from billing_worker.standing.entitlements import refresh_family
from shared.clock import Clock
from shared.money import Money

#: At most this many payments, or attempts, are listed, newest first.
LISTED = 500

Owned = TypeVar("Owned", Payment, Invoice)
T = TypeVar("T")


class ReceivedPayment(Protocol):
    """A payment received offline, as a request gives it."""

    @property
    def amount(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def invoices(self) -> Sequence[str]: ...


async def record_payment(
    session: AsyncSession, tenant_id: str, account_id: str, real: RealTime, paid: ReceivedPayment
) -> tuple[Account, Payment]:
    """Record the payment and apply it now: the invoices it names first, in order, then the
    others oldest first, the rest as credit."""
    now = real.now
    tenant, account = await lock_account_now(session, tenant_id, account_id, real)
    if paid.currency != account.currency:
        raise InvalidRequest.field(
            "currency", f"the account pays in {account.currency}, not {paid.currency}"
        )
    amount = parse_amount(paid.amount, paid.currency)
    await _check_named(session, account, paid.invoices)
    event = PaymentEvent(
        tenant_id=tenant.id, account_id=account.id, key=f"manual:{new_id('pay')}",
        source="manual", type=RECEIVED, amount_minor=amount.minor, currency=amount.currency,
        method=paid.method, reference=paid.reference, hard=False, occurred_at=now,
        received_at=now,
    )  # fmt: skip
    await enqueue(session, event)
    # queued and applied in one transaction, to the invoices it names first
    await apply_event(session, event, now, real=real, pays_first=paid.invoices)
    payment = await session.get(Payment, event.payment_id)
    assert payment is not None
    return account, payment


async def _check_named(session: AsyncSession, account: Account, named: Sequence[str]) -> None:
    """Each invoice a payment names is one of this account's, open; else 422 by path."""
    if not named:
        return
    found = {
        invoice.id: invoice
        for invoice in await session.scalars(
            select(Invoice).where(
                Invoice.tenant_id == account.tenant_id,
                Invoice.account_id == account.id,
                Invoice.id.in_(named),
            )
        )
    }
    problems = []
    for n, invoice_id in enumerate(named):
        invoice = found.get(invoice_id)
        if invoice is None:
            problems.append(
                FieldError(f"invoices[{n}]", f"no invoice {invoice_id!r} of this account")
            )
        elif invoice.status != InvoiceStatus.OPEN:
            problems.append(
                FieldError(f"invoices[{n}]", f"{invoice_id} is {invoice.status}, not open")
            )
    if len(set(named)) < len(named):
        problems.append(FieldError("invoices", "names an invoice more than once"))
    if problems:
        raise InvalidRequest.fields(problems)


async def payments_of(session: AsyncSession, account: Account) -> list[Payment]:
    """The account's payments, newest first."""
    query = (
        select(Payment)
        .where(Payment.tenant_id == account.tenant_id, Payment.account_id == account.id)
        .order_by(Payment.received_at.desc(), Payment.id)
        .limit(LISTED)
    )
    return list((await session.scalars(query)).all())


async def attempts_of(session: AsyncSession, account: Account) -> list[PaymentAttempt]:
    """The charges the collector made for the account, newest first."""
    query = (
        select(PaymentAttempt)
        .where(
            PaymentAttempt.tenant_id == account.tenant_id,
            PaymentAttempt.account_id == account.id,
        )
        .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id)
        .limit(LISTED)
    )
    return list((await session.scalars(query)).all())


async def lock_owned(
    session: AsyncSession, tenant_id: str, model: type[Owned], row_id: str, name: str
) -> tuple[Tenant, Account, Owned]:
    """The tenant's payment or invoice, locked after its account (parent first)."""
    found = await session.scalar(
        select(model).where(model.tenant_id == tenant_id, model.id == row_id)
    )
    if found is None:
        raise NotFound(f"no {name} {row_id!r}")
    account = await lock_with_parent(session, tenant_id, found.account_id)
    await session.refresh(found, with_for_update=True)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no {name} {row_id!r}")
    return tenant, account, found


async def _card_of(
    providers: ProviderBook, session: AsyncSession, payment: Payment
) -> tuple[PaymentProvider, str] | None:
    """The provider and charge key a collected payment's money goes back through; None for
    a payment received offline (the tenant gives it back the same way)."""
    attempt_key = await session.scalar(
        select(PaymentEvent.attempt_key).where(
            PaymentEvent.tenant_id == payment.tenant_id, PaymentEvent.payment_id == payment.id
        )
    )
    if attempt_key is None:
        return None
    provider_name = await session.scalar(
        select(PaymentMethod.provider)
        .join(PaymentAttempt, PaymentAttempt.payment_method_id == PaymentMethod.id)
        .where(PaymentAttempt.idempotency_key == attempt_key)
    )
    found = provider_named(await providers.of(session, payment.tenant_id), provider_name or "")
    if found is None:
        raise Conflict(f"the payment's provider {provider_name!r} is not configured")
    return found, attempt_key


class RefundAsked(Protocol):
    @property
    def amount(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def adjust(self) -> bool: ...


async def refund(
    sessions: async_sessionmaker[AsyncSession],
    providers: ProviderBook,
    turns: Turns,
    clock: Clock,
    tenant_id: str,
    payment_id: str,
    asked: RefundAsked,
    view: Callable[[AsyncSession, Account, Payment, Refund, Money], Awaitable[T]],
) -> T:
    """Check, have the provider give the money back, then record it: no transaction is open
    while the provider is asked (on SQLite it would hold every writer for an HTTP call).
    Refunds of one payment take turns in this process, so a check holds until its record.
    Returns the refund (with its payment, account and amount) as ``view`` renders it."""
    refund_id = new_id("ref")
    async with turns.turn(payment_id):
        async with sessions() as session, session.begin():
            _, account, payment = await lock_owned(session, tenant_id, Payment, payment_id,
                                                   "payment")  # fmt: skip
            amount = parse_amount(asked.amount, payment.currency)
            try:
                await check_refund(session, account, payment, amount)
            except RefundError as exc:
                raise InvalidRequest.field("amount", str(exc)) from exc
            card = await _card_of(providers, session, payment)
        if card is not None:
            provider, charge_key = card
            result = await provider.refund(
                charge_key, amount, refund_id, reference=payment.reference
            )
            if result.outcome is not Outcome.SUCCEEDED:
                raise Conflict(f"the payment provider refused the refund: {result.reason}")
        now = clock.now()
        async with sessions() as session, session.begin():
            tenant, account, payment = await lock_owned(session, tenant_id, Payment, payment_id,
                                                        "payment")  # fmt: skip
            made = await refund_payment(session, account, payment, amount, reason=asked.reason,
                                        now=now, adjust=asked.adjust)  # fmt: skip
            made.id = refund_id
            await refresh_family(session, tenant, account, now)
            rendered = await view(session, account, payment, made, amount)
    return rendered


async def webhook_tenant(session: AsyncSession, tenant_id: str) -> Tenant | None:
    """The tenant a provider's webhook names, with its secrets, if it exists."""
    return await session.get(Tenant, tenant_id, options=[WITH_SECRETS])


class ProviderEventData(Protocol):
    @property
    def idempotency_key(self) -> str: ...
    @property
    def amount(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def hard(self) -> bool: ...
    @property
    def reference(self) -> str | None: ...


async def store_provider_event(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    now: datetime,
    *,
    event_id: str,
    event_type: str,
    data: ProviderEventData,
) -> tuple[bool, bool]:
    """Store a provider's event about one of the tenant's charges for the payment queue;
    returns (whether it is about a charge Tollgate made, whether it was new). An event about
    anything else is acknowledged all the same, so the provider stops resending it."""
    try:
        async with sessions() as session, session.begin():
            attempt = await session.scalar(
                select(PaymentAttempt).where(
                    PaymentAttempt.tenant_id == tenant_id,
                    PaymentAttempt.idempotency_key == data.idempotency_key,
                )
            )
            if attempt is None:
                return False, True
            amount = None
            if event_type == "charge.refunded":
                if data.amount is None:
                    raise InvalidRequest.field("data.amount", "a refund names its amount")
                amount = parse_amount(data.amount, attempt.currency, "data.amount").minor
            stored = charge_event(
                attempt, event_type, source="webhook", now=now, reference=data.reference,
                reason=data.reason, hard=data.hard, amount_minor=amount,
                provider_event_id=event_id,
            )  # fmt: skip
            fresh = await enqueue(session, stored)
    except IntegrityError:
        fresh = False  # the same event, stored at this moment by a concurrent delivery
    return True, fresh


async def payments_page(
    session: AsyncSession,
    tenant_id: str,
    *,
    account_id: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[Payment], bool]:
    """The tenant's payments, newest first, after the one ``after`` names; whether more
    follow."""
    where: list[Any] = [Payment.tenant_id == tenant_id]
    if account_id is not None:
        where.append(Payment.account_id == account_id)
    if after is not None:
        last = await session.get(Payment, after)
        if last is None or last.tenant_id != tenant_id:
            raise InvalidRequest.field("after", "is not a payment of this tenant")
        where.append(
            or_(Payment.received_at < last.received_at,
                and_(Payment.received_at == last.received_at, Payment.id < last.id))
        )  # fmt: skip
    found = (
        await session.scalars(
            select(Payment)
            .where(*where)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .limit(limit + 1)
        )
    ).all()
    return list(found[:limit]), len(found) > limit


async def tenant_payment(session: AsyncSession, tenant_id: str, payment_id: str) -> Payment:
    payment = await session.scalar(
        select(Payment).where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
    )
    if payment is None:
        raise NotFound(f"no payment {payment_id!r}")
    return payment


async def stripe_webhook_secret(session: AsyncSession, tenant_id: str) -> str | None:
    """The tenant's Stripe webhook secret as stored (a reference or sealed), if any."""
    return await session.scalar(select(Tenant.stripe_webhook_secret).where(Tenant.id == tenant_id))
