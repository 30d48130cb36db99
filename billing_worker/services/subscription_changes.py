"""Changing a subscription: its plan, its cancellation and the undoing of it, pauses, the
seat quantity, and the usage it records. Each change holds the account's family, applies the
domain's rule to the subscription (and its add-ons, which follow their base) and settles
what it bills today."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import UsageRecord
from billing_worker.domain.catalog import ChangePolicy
from billing_worker.domain.changes import (
    CancelRequest,
    ChangeRequest,
    add_on_allowed,
    cancellation_for,
    plan_change_for,
)
from billing_worker.domain.subscriptions import (
    FOREVER,
    Pause,
    QuantityChange,
    SubscriptionError,
    Terms,
    plan_on,
)
from billing_worker.invoicing.invoicer import local_today
from billing_worker.invoicing.terms import save_terms, terms_of, touch_billing
from billing_worker.services.errors import Conflict, InvalidRequest
from billing_worker.services.families import (
    Target,
    add_ons,
    book_of,
    lock_subscription,
    refuse_if_blocked,
)
from billing_worker.services.negotiated import OverrideIn, negotiated
from billing_worker.services.settling import Settled, settle


def _refused(exc: SubscriptionError) -> NoReturn:
    raise InvalidRequest.field(exc.field, str(exc)) from exc


async def change_plan(
    session: AsyncSession,
    target: Target,
    *,
    plan: str,
    price_list: str | None,
    policy: str | None,
    price_overrides: Sequence[OverrideIn] | None,
    dry_run: bool,
) -> Settled:
    """Change plan by the catalog's change rules (or ``policy``); a newer change replaces
    one still pending, and add-ons the new plan does not allow end with the old one."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    await refuse_if_blocked(session, tenant, account, now)
    today = local_today(now, account.timezone)
    book = await book_of(session, tenant.id)
    terms = terms_of(sub)
    asked = ChangeRequest(requested_on=today, plan=plan, price_list=price_list,
                          policy=ChangePolicy(policy) if policy else None)  # fmt: skip
    try:
        planned = plan_change_for(terms, book.at, asked, payer.cycle_day)
    except SubscriptionError as exc:
        _refused(exc)
    if not book.at(today).priced_in(plan, payer.currency):
        raise InvalidRequest.field("plan", f"plan {plan!r} has no price in {payer.currency}")
    if price_overrides:
        overrides = negotiated(book.at(planned.effective), planned.plan, planned.price_list,
                               price_overrides, payer.currency)  # fmt: skip
        planned = replace(planned, price_overrides=overrides)
    kept = tuple(c for c in terms.changes if c.effective <= today)
    save_terms(sub, replace(terms, changes=(*kept, planned)))
    touch_billing(sub, planned.effective)
    catalog = book.at(today)
    for add_on in await add_ons(session, sub):
        add_on_terms = terms_of(add_on)
        if add_on_terms.cancellation is not None:
            continue
        add_on_plan, _ = plan_on(add_on_terms, planned.effective)
        if add_on_allowed(catalog, plan, add_on_plan) is not None:
            ended = CancelRequest(requested_on=planned.effective, billing_policy="immediate",
                                  entitlement_date=planned.effective)  # fmt: skip
            save_terms(add_on, replace(add_on_terms, cancellation=cancellation_for(
                add_on_terms, book.at, ended, payer.cycle_day)))  # fmt: skip
            touch_billing(add_on, planned.effective)
    return await settle(session, tenant, account, payer, sub, now, dry_run=dry_run)


async def cancel(
    session: AsyncSession,
    target: Target,
    *,
    entitlement_policy: str | None,
    entitlement_date: date | None,
    billing_policy: str | None,
    dry_run: bool,
) -> Settled:
    """Cancel: access and billing each end by their own policy; add-ons not already
    cancelled end with their base."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    today = local_today(now, account.timezone)
    book = await book_of(session, tenant.id)
    asked = CancelRequest(
        requested_on=today,
        entitlement_policy=ChangePolicy(entitlement_policy) if entitlement_policy else None,
        entitlement_date=entitlement_date,
        billing_policy=billing_policy,
    )
    for each in [sub, *await add_ons(session, sub)]:
        terms = terms_of(each)
        if each is not sub and terms.cancellation is not None:
            continue
        try:
            ended = cancellation_for(terms, book.at, asked, payer.cycle_day)
        except SubscriptionError as exc:
            _refused(exc)
        save_terms(each, replace(terms, cancellation=ended))
        touch_billing(each, min(ended.billing_end, today))
    return await settle(session, tenant, account, payer, sub, now, dry_run=dry_run)


async def uncancel(session: AsyncSession, target: Target) -> Settled:
    """Withdraw a cancellation that has not taken effect, and its add-ons' with it."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    today = local_today(now, account.timezone)
    terms = terms_of(sub)
    if terms.cancellation is None:
        raise InvalidRequest.field("subscription", "the subscription is not cancelled")
    if terms.cancellation.entitlement_end <= today:
        raise InvalidRequest.field("subscription", "the cancellation already took effect")
    for each in [sub, *await add_ons(session, sub)]:
        its_terms = terms_of(each)
        if its_terms.cancellation == terms.cancellation:
            save_terms(each, replace(its_terms, cancellation=None))
            touch_billing(each, min(terms.cancellation.billing_end, today))
    return await settle(session, tenant, account, payer, sub, now, dry_run=False)


async def pause(
    session: AsyncSession,
    target: Target,
    *,
    start_date: date | None,
    resume_date: date | None,
    dry_run: bool,
) -> Settled:
    """Pause access and billing from a day (today by default); paused days are credited."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    today = local_today(now, account.timezone)
    start = start_date or today
    terms = terms_of(sub)
    _check_pause(terms, start, resume_date, today)
    save_terms(sub, replace(terms, pauses=(*terms.pauses, Pause(start, resume_date))))
    touch_billing(sub, start)
    return await settle(session, tenant, account, payer, sub, now, dry_run=dry_run)


def _check_pause(terms: Terms, start: date, resume: date | None, today: date) -> None:
    if start < today:
        raise InvalidRequest.field("start_date", "must not be in the past")
    if start < terms.billing_start:
        raise InvalidRequest.field("start_date", "billing has not started on that day")
    if resume is not None and resume <= start:
        raise InvalidRequest.field("resume_date", "must be after start_date")
    if any(p.resume is None or p.resume > start for p in terms.pauses):
        raise InvalidRequest.field("start_date", "the subscription is already paused then")
    if terms.cancellation is not None and terms.cancellation.entitlement_end <= start:
        raise InvalidRequest.field("subscription", "the subscription is cancelled by then")


async def resume(
    session: AsyncSession,
    target: Target,
    *,
    resume_date: date | None,
    dry_run: bool,
) -> Settled:
    """Resume a paused subscription, today or on a later day."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    today = local_today(now, account.timezone)
    resume_on = resume_date or today
    terms = terms_of(sub)
    if not terms.pauses or (terms.pauses[-1].resume or date.max) <= today:
        raise InvalidRequest.field("subscription", "the subscription is not paused")
    last = terms.pauses[-1]
    if resume_on < today or resume_on < last.start:
        raise InvalidRequest.field("resume_date", "must be today or later")
    kept = terms.pauses[:-1]
    pauses = kept + ((Pause(last.start, resume_on),) if resume_on > last.start else ())
    save_terms(sub, replace(terms, pauses=pauses))
    touch_billing(sub, last.start)
    return await settle(session, tenant, account, payer, sub, now, dry_run=dry_run)


async def change_quantity(
    session: AsyncSession,
    target: Target,
    *,
    quantity: int,
    effective_date: date | None,
    dry_run: bool,
) -> Settled:
    """Change the seat quantity from a day (prorated; also the concurrent-session limit)."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    await refuse_if_blocked(session, tenant, account, now)
    today = local_today(now, account.timezone)
    effective = effective_date or today
    if effective < today:
        raise InvalidRequest.field("effective_date", "must not be in the past")
    book = await book_of(session, tenant.id)
    terms = terms_of(sub)
    plan_name, _ = plan_on(terms, effective)
    if not book.at(effective).plan(plan_name).per_seat:
        raise InvalidRequest.field("quantity", f"plan {plan_name!r} is not priced per seat")
    kept = tuple(q for q in terms.quantities if q.effective < effective)
    save_terms(sub, replace(terms, quantities=(*kept, QuantityChange(effective, quantity))))
    touch_billing(sub, effective)
    return await settle(session, tenant, account, payer, sub, now, dry_run=dry_run)


async def record_usage(
    session: AsyncSession,
    target: Target,
    *,
    record_id: str,
    name: str,
    units: int,
    day: date | None,
) -> tuple[UsageRecord, bool]:
    """Record usage units for a day (today by default); a record id already recorded for
    the same usage is that record (True: a duplicate), for other usage a conflict."""
    now = target.real.now
    tenant, account, payer, sub = await lock_subscription(session, target)
    today = local_today(now, account.timezone)
    day = day or today
    if day > today:
        raise InvalidRequest.field("day", "usage cannot be recorded for a future day")
    existing = await session.scalar(
        select(UsageRecord).where(
            UsageRecord.tenant_id == tenant.id, UsageRecord.record_id == record_id
        )
    )
    if existing is not None:
        if (existing.subscription_id, existing.name, existing.units, existing.day) != (
            sub.id, name, units, day,
        ):  # fmt: skip
            raise Conflict.field("record_id", "already used for different usage")
        return existing, True
    terms = terms_of(sub)
    if not terms.billing_start <= day <= terms.billing_end:
        raise InvalidRequest.field(
            "day",
            f"{day} is outside the subscription's billing, which runs from {terms.billing_start}"
            + (f" to {terms.billing_end}" if terms.billing_end < FOREVER else ""),
        )
    book = await book_of(session, tenant.id)
    plan_name, _ = plan_on(terms, day)
    names = {u.name for ph in book.at(day).plan(plan_name).phases for u in ph.usages}
    if name not in names:
        raise InvalidRequest.field("name", f"plan {plan_name!r} has no usage {name!r}")
    record = UsageRecord(tenant_id=tenant.id, subscription_id=sub.id, record_id=record_id,
                         name=name, day=day, units=units, created_at=now)  # fmt: skip
    session.add(record)
    touch_billing(sub, day)
    if day < today or day == terms.billing_end:
        # late usage (or on the last billed day, already invoiced): reconcile on the next
        # pass, without passing over an earlier due moment
        payer.next_evaluation_at = min(payer.next_evaluation_at or now, now)
    await session.flush()
    return record, False
