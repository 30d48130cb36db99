"""Recompute what an account may do from SQL, and owe the new record to Redis."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    PaymentMethod,
    Subscription,
    Tenant,
)
from billing_worker.domain.catalog import Category, ChangePolicy
from billing_worker.domain.dunning import DAY, DunningPolicy, classic_with, policy_from_document
from billing_worker.domain.moments import next_moment
from billing_worker.domain.standing import (
    RenewalOutlook,
    StandingResult,
    UnpaidInvoice,
    evaluate_standing,
)
from billing_worker.domain.subscriptions import (
    FOREVER,
    CancelRequest,
    Pause,
    Terms,
    cancellation_for,
    entitlement_spans,
    plan_on,
    quantity_on,
)
from billing_worker.invoicing.catalogs import CatalogBook, load_book
from billing_worker.invoicing.invoicer import bill_to, local_midnight, local_today, paid_for
from billing_worker.invoicing.prefetch import Prefetched
from billing_worker.invoicing.summaries import next_commit
from billing_worker.invoicing.terms import save_terms, terms_of, touch_billing
from billing_worker.publishing.outbox import stage_record
from billing_worker.standing.history import record_change
from billing_worker.standing.messages import Kind, stage_message
from shared.entitlement import EntitlementRecord
from shared.money import Money
from shared.states import Reason, SessionPolicy, Standing


@dataclass(frozen=True, slots=True)
class Access:
    """What an account's subscriptions grant today, and until when."""

    plan: str | None = None
    features: tuple[str, ...] = ()
    seat_limit: int | None = None
    session_policy: SessionPolicy = SessionPolicy.DENY_NEW
    #: When today's access ends by the subscriptions' own dates (None: it does not).
    ends_at: datetime | None = None
    #: The next moment a subscription's dates change what is granted.
    next_change_at: datetime | None = None
    #: The dunning policy the base plan names, if any.
    dunning_policy: str | None = None


def _access(subs: Sequence[Subscription], book: CatalogBook, today: date, tz: str) -> Access:
    entitled = []
    boundaries: list[date] = []
    for sub in subs:
        terms = terms_of(sub)
        spans = entitlement_spans(terms, book.at)
        boundaries += [d for s in spans for d in (s.start, s.end) if d > today]
        boundaries += [c.effective for c in terms.changes if c.effective > today]
        boundaries += [q.effective for q in terms.quantities if q.effective > today]
        current = next((s for s in spans if today in s), None)
        if current is not None:
            entitled.append((terms, current))
    upcoming = min(boundaries, default=None)
    next_change = local_midnight(upcoming, tz) if upcoming and upcoming < FOREVER else None
    if not entitled:
        return Access(next_change_at=next_change)
    catalog = book.at(today)
    features: list[str] = []
    base = None
    for terms, _span in entitled:
        plan_name, _ = plan_on(terms, today)
        plan = book.at(today).plans.get(plan_name)
        if plan is None:
            continue
        features += [f for f in plan.entitlement.features if f not in features]
        if base is None and catalog.products[plan.product].category is not Category.ADD_ON:
            base = (plan, quantity_on(terms, today))
    end = max(span.end for _terms, span in entitled)
    ends_at = local_midnight(end, tz) if end < FOREVER else None
    if base is None:
        return Access(features=tuple(features), ends_at=ends_at, next_change_at=next_change)
    plan, quantity = base
    return Access(
        plan=plan.name,
        features=tuple(features),
        seat_limit=quantity if plan.per_seat else plan.entitlement.seat_limit,
        session_policy=SessionPolicy(plan.entitlement.session_policy),
        ends_at=ends_at,
        next_change_at=next_change,
        dunning_policy=plan.dunning_policy,
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What ``evaluate_account`` found: the standing, the access, and what it rests on."""

    result: StandingResult
    access: Access
    #: The account whose invoices decide the standing (itself, or the parent it follows).
    source: Account
    subscriptions: Sequence[Subscription]
    unpaid: Sequence[UnpaidInvoice]
    policy_name: str
    policy: DunningPolicy


@functools.lru_cache(maxsize=256)
def _parsed_policy(document: bytes, currency: str) -> DunningPolicy:
    return policy_from_document(orjson.loads(document), currency)


def policy_for(
    tenant: Tenant, account: Account, plan_policy: str | None
) -> tuple[str, DunningPolicy]:
    """The account's named policy, else its plan's, else the tenant's default, else the
    classic ladder with the tenant's ``grace_days`` (named "classic")."""
    policies: dict[str, Any] = tenant.dunning_policies or {}
    for name in (account.dunning_policy, plan_policy, "default"):
        if name is not None and name in policies:
            document = orjson.dumps(policies[name], option=orjson.OPT_SORT_KEYS)
            return name, _parsed_policy(document, account.currency)
    return "classic", classic_with(tenant.grace_days)


async def standing_source(session: AsyncSession, tenant: Tenant, account: Account) -> Account:
    """The account whose unpaid invoices decide ``account``'s standing."""
    if account.parent_id is None:
        return account
    parent = await session.get(Account, account.parent_id)
    if parent is None:
        return account
    if account.payment_delegated:
        return parent
    if parent.kind == "reseller" and tenant.channel_overdue == "follow":
        return parent
    return account


async def evaluate_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> Evaluation:
    """Run the standing rule and the entitlement view for one account on its SQL state."""
    subs: Sequence[Subscription]
    if prefetched is not None and account.id in prefetched.accounts:
        subs = prefetched.subscriptions.get(account.id, [])
    else:
        subs = (
            await session.scalars(
                select(Subscription).where(
                    Subscription.tenant_id == tenant.id, Subscription.account_id == account.id
                )
            )
        ).all()
    source = await standing_source(session, tenant, account)
    invoices: Sequence[Invoice]
    if prefetched is not None and source.id in prefetched.accounts:
        invoices = [i for i in prefetched.open_invoices.get(source.id, []) if i.status == "open"]
    else:
        invoices = (
            await session.scalars(
                select(Invoice).where(
                    Invoice.tenant_id == tenant.id,
                    Invoice.account_id == source.id,
                    Invoice.status == "open",
                )
            )
        ).all()
    unpaid = [
        UnpaidInvoice(
            invoice_id=inv.id,
            due_at=inv.due_at,
            balance=Money.from_minor(inv.total_minor - inv.paid_minor, inv.currency),
        )
        for inv in invoices
    ]
    access = Access()
    if subs:
        book = book or await load_book(session, tenant.id)
        access = _access(subs, book, local_today(now, account.timezone), account.timezone)
    renewals = []
    if source.next_bill_on is not None:
        renewals.append(
            RenewalOutlook(
                next_invoice_at=local_midnight(source.next_bill_on, source.timezone),
                net_terms=timedelta(days=source.net_terms_days),
            )
        )
    today = local_today(now, account.timezone)
    active = access.plan is not None or bool(access.features)
    policy_name, policy = policy_for(tenant, source, access.dunning_policy)
    result = evaluate_standing(
        unpaid=unpaid,
        renewals=renewals,
        has_active_subscription=active
        or await _pays_for_active(session, account, today, prefetched),
        paused=not active and any(_paused_on(terms_of(sub), today) for sub in subs),
        policy=policy,
        now=now,
        hard_declined=source.hard_declined,
        exempt=account.dunning_exempt or source.dunning_exempt,
        suspended_manually=account.suspended_manually or source.suspended_manually,
    )
    return Evaluation(result, access, source, subs, unpaid, policy_name, policy)


def _paused_on(terms: Terms, day: date) -> bool:
    return day < terms.entitlement_end and any(day in pause.span for pause in terms.pauses)


async def _pays_for_active(
    session: AsyncSession, account: Account, today: date, prefetched: Prefetched | None
) -> bool:
    """Whether ``account`` pays for another account's subscription that is still running
    (a parent for delegating children, a reseller for its customers): such a payer is in
    business, and judged by its invoices, even with no subscription of its own."""
    others = [a.id for a in await paid_for(session, account, prefetched)]
    if not others:
        return False
    if prefetched is not None and prefetched.accounts.issuperset(others):
        return any(
            s.entitlement_end is None or s.entitlement_end > today
            for other in others
            for s in prefetched.subscriptions.get(other, [])
        )
    running = await session.scalar(
        select(Subscription.id)
        .where(
            Subscription.tenant_id == account.tenant_id,
            Subscription.account_id.in_(others),
            or_(Subscription.entitlement_end.is_(None), Subscription.entitlement_end > today),
        )
        .limit(1)
    )
    return running is not None


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((m for m in moments if m is not None), default=None)


#: Changes of standing reported to the tenant's administrators: into or out of a rung that
#: restricts access, a cancellation for non-payment, and a return to good standing from
#: any rung. Entering grace is not one: the payment-due reminder says it.
_RESTRICTED = {Standing.DEGRADED, Standing.SUSPENDED}
_LADDER = {Standing.GRACE, *_RESTRICTED}
_LADDER_REASONS = {Reason.PAYMENT_OVERDUE, Reason.PAYMENT_DECLINED, Reason.SUSPENDED_MANUALLY}


async def refresh_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> EntitlementRecord:
    """Re-evaluate the account, store its standing, act on the ladder (cancellation,
    collection, messages) and stage the new record.

    The caller holds the account row (``lock_account``) so versions never collide.
    """
    found = await evaluate_account(session, tenant, account, now, book=book, prefetched=prefetched)
    result = found.result
    if result.standing is Standing.CANCELLED and result.dunning is not None:
        book = book or await load_book(session, tenant.id)
        await _enter_cancelled_stage(session, account, found, book, now)
    previous, previous_reason = account.standing, account.standing_reason
    if found.source is account and await _chargeable(session, account, prefetched):
        _schedule_collection(account, found, now)
        if _charging_now(account, result, now):
            result = replace(result, standing=Standing.ACTIVE, reason=_REASONS_ACTIVE)
            found = replace(found, result=result)
    account.ent_version += 1
    account.standing = result.standing.value
    account.standing_reason = result.reason
    if (previous, previous_reason) != (account.standing, account.standing_reason):
        record_change(
            session,
            tenant_id=tenant.id,
            account_id=account.id,
            effective_at=now,
            standing=account.standing,
            reason=account.standing_reason,
            previous_standing=previous,
        )
    if found.source is account and (await bill_to(session, account)).id == account.id:
        _hold_billing(account, found, now)
    known = prefetched.message_keys if prefetched and account.id in prefetched.accounts else None
    await _advise(session, tenant, account, found, previous, now, known)
    published, access = result, found.access
    if not result.standing.grants_access and result.reason != Reason.SUSPENDED_MANUALLY:
        kept = [sub for sub in found.subscriptions if sub.dunning_exempt]
        if kept:  # exempt subscriptions keep their access while the account is suspended
            book = book or await load_book(session, tenant.id)
            today = local_today(now, account.timezone)
            exempt = _access(kept, book, today, account.timezone)
            if exempt.plan is not None or exempt.features:
                access = exempt
                published = replace(
                    result, standing=Standing.ACTIVE, reason=Reason.SUBSCRIPTION_EXEMPT,
                    access_until=None,
                )  # fmt: skip
    valid_until = _earliest(published.access_until, access.ends_at)
    if not published.standing.grants_access:
        valid_until = None
    account.valid_until = valid_until
    next_bill = (
        local_midnight(account.next_bill_on, account.timezone) if account.next_bill_on else None
    )
    summary = await next_commit(session, tenant, account, prefetched)
    moment = next_moment(
        billing=_earliest(next_bill, summary),
        dunning=result.next_change_at,
        access=access.next_change_at,
    )
    # Due again at once rather than in the past (a local day that began before ``now``):
    # an account is never processed as of an instant before one it was processed at.
    account.next_evaluation_at = max(moment, now) if moment else None
    features, read_only = access.features, False
    if published.standing is Standing.DEGRADED:
        features, read_only = _degraded(tenant, found.policy, features)
    record = EntitlementRecord(
        tenant_id=tenant.id,
        account_id=account.id,
        version=account.ent_version,
        standing=Standing(published.standing),
        reason=published.reason,
        valid_until=int(valid_until.timestamp()) if valid_until else None,
        seat_limit=access.seat_limit,
        session_policy=access.session_policy,
        features=features,
        plan=access.plan,
        read_only=read_only,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
        **_lapse(published, valid_until),
    )
    account.ent_record = stage_record(session, record, now)
    return record


def _lapse(published: StandingResult, valid_until: datetime | None) -> dict[str, Any]:
    """What the account becomes at ``valid_until``, when the dunning ladder decides it (the
    first rung that denies); when a subscription's end decides it, it is not said."""
    if (
        valid_until is None
        or published.lapses_to is None
        or published.access_until is None
        or valid_until < published.access_until
    ):
        return {}
    return {"lapse_standing": published.lapses_to, "lapse_reason": Reason.PAYMENT_OVERDUE}


def _degraded(
    tenant: Tenant, policy: DunningPolicy, features: tuple[str, ...]
) -> tuple[tuple[str, ...], bool]:
    """What a degraded account keeps: the policy's features (else all) and whether it is
    read-only (the policy's say, else the tenant's)."""
    read_only = tenant.degraded_read_only
    if policy.degraded_read_only is not None:
        read_only = policy.degraded_read_only
    if policy.degraded_features is not None:
        features = tuple(f for f in features if f in policy.degraded_features)
    return features, read_only


async def _enter_cancelled_stage(
    session: AsyncSession, account: Account, found: Evaluation, book: CatalogBook, now: datetime
) -> None:
    """Cancel for non-payment; billing changed today, so the credit (or final charge) is
    invoiced today by the account that pays, not on its next billing day."""
    if not _cancel_for_nonpayment(account, found, book, now):
        return
    payer = await bill_to(session, account)
    today = local_today(now, payer.timezone)
    payer.next_bill_on = min(payer.next_bill_on or today, today)
    if payer is not account:  # a reseller: due now, whatever its own next moment
        payer.next_evaluation_at = min(payer.next_evaluation_at or now, now)


def _cancel_for_nonpayment(
    account: Account, found: Evaluation, book: CatalogBook, now: datetime
) -> bool:
    """The cancelled rung: end access to every subscription today (exempt ones excepted);
    billing ends by the policy's ``cancel_billing``. Returns whether any was cancelled."""
    cancelled = False
    today = local_today(now, account.timezone)
    request = CancelRequest(
        requested_on=today,
        entitlement_policy=ChangePolicy.IMMEDIATE,
        billing_policy=found.policy.cancel_billing,
    )
    for sub in found.subscriptions:
        terms = terms_of(sub)
        if sub.dunning_exempt or (
            terms.cancellation is not None and terms.cancellation.entitlement_end <= today
        ):
            continue
        ended = cancellation_for(terms, book.at, request, account.cycle_day)
        save_terms(sub, replace(terms, cancellation=ended))
        touch_billing(sub, min(ended.billing_end, today))
        cancelled = True
    return cancelled


def _hold_billing(account: Account, found: Evaluation, now: datetime) -> None:
    """With a policy whose suspension holds billing: hold each subscription's billing from
    the day the account is suspended for non-payment until the day it is reinstated. The
    scheduler invoices the account at once, so held days already billed are credited."""
    result = found.result
    hold = (
        result.standing is Standing.SUSPENDED
        and result.dunning is not None
        and found.policy.suspended_billing == "pause"
    )
    if not hold and not any(e["type"] == "hold" for s in found.subscriptions for e in s.events):
        return
    today = local_today(now, account.timezone)
    changed = False
    for sub in found.subscriptions:
        terms = terms_of(sub)
        held = next((h for h in terms.holds if h.resume is None), None)
        if hold and held is None and not sub.dunning_exempt and today < terms.billing_end:
            holds, since = (*terms.holds, Pause(today)), today
        elif not hold and held is not None:
            kept = tuple(h for h in terms.holds if h is not held)
            holds = (*kept, Pause(held.start, today)) if today > held.start else kept
            since = held.start
        else:
            continue
        save_terms(sub, replace(terms, holds=holds))
        touch_billing(sub, since)
        changed = True
    if changed:
        account.next_bill_on = min(account.next_bill_on or today, today)


async def _advise(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    found: Evaluation,
    previous: str,
    now: datetime,
    known: set[str] | None,
) -> None:
    """Tell the administrators about a change of rung, and remind them of what is due
    (``known``: the batch's message keys, see ``messages.stage_message``)."""
    result = found.result
    details = {
        "standing": result.standing.value,
        "reason": result.reason,
        "days_past_due": result.dunning.days_past_due if result.dunning else 0,
        "balance_due": _owed(found),
    }
    changed = previous != result.standing.value
    if changed and (
        Standing(previous) in _RESTRICTED
        or result.standing in _RESTRICTED
        or result.reason in _LADDER_REASONS
        or (Standing(previous) in _LADDER and result.standing is Standing.ACTIVE)
    ):
        await stage_message(
            session, tenant, account, Kind.STANDING_CHANGED,
            f"standing:{account.id}:{account.ent_version}",
            {**details, "previous_standing": previous}, now, known=known,
        )  # fmt: skip
    ladder = result.dunning
    # No reminder while a charge is about to be made: its outcome decides (a failure
    # re-evaluates the account at once, and the reminder goes out then).
    if found.source is account and ladder and ladder.reminder and account.collect_at is None:
        every = found.policy.reminder_every_days or 1
        assert ladder.anchor is not None
        day = (ladder.anchor + (ladder.reminder - 1) * every * DAY).date()
        await stage_message(
            session, tenant, account, Kind.PAYMENT_DUE, f"payment_due:{account.id}:{day}",
            {**details, "reminder": ladder.reminder}, now, known=known,
        )  # fmt: skip


def _owed(found: Evaluation) -> str | None:
    owing = [u.balance for u in found.unpaid if u.balance.is_positive()]
    return str(sum(owing[1:], owing[0]).amount) if owing else None


#: The reason of an account in good standing.
_REASONS_ACTIVE = Reason.IN_GOOD_STANDING


def _charging_now(account: Account, result: StandingResult, now: datetime) -> bool:
    """Whether a charge for an invoice falling due right now is being made: the account is
    then in good standing until the charge's outcome (a renewal paid by card never shows
    as owing; a decline puts the account in grace at once), as a subscription stays active
    while its invoice's payment is attempted. Grace at 0 days past due grants the same
    access, so no gateway decision depends on it."""
    ladder = result.dunning
    return (
        account.collect_at == now
        and result.standing is Standing.GRACE
        and ladder is not None
        and ladder.days_past_due == 0
    )


async def _chargeable(
    session: AsyncSession, account: Account, prefetched: Prefetched | None
) -> bool:
    """Whether the account has a default payment method the collector can charge."""
    if prefetched is not None and account.id in prefetched.accounts:
        return account.id in prefetched.chargeable
    method = await session.scalar(
        select(PaymentMethod.id)
        .where(
            PaymentMethod.tenant_id == account.tenant_id,
            PaymentMethod.account_id == account.id,
            PaymentMethod.is_default.is_(True),
            PaymentMethod.removed_at.is_(None),
        )
        .limit(1)
    )
    return method is not None


def _schedule_collection(account: Account, found: Evaluation, now: datetime) -> None:
    """Wake the collector when a new invoice or a new retry is owed a charge.

    The key names what a charge would be for: the newest unpaid invoice and the ladder's
    retry number. The collector charges once per key and payment method.
    """
    owing = [u for u in found.unpaid if u.balance.is_positive()]
    if account.collection != "automatic" or account.hard_declined or not owing:
        return
    newest = max(owing, key=lambda u: (u.due_at, u.invoice_id)).invoice_id
    retry = found.result.dunning.retry if found.result.dunning else None
    key = f"{newest}:{retry or 0}"
    if key != account.collect_key:
        account.collect_key = key
        account.collect_at = now


async def refresh_followers(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> None:
    """Re-publish the children whose standing follows ``account`` (locked parent first)."""
    children: Sequence[Account]
    if prefetched is not None and account.id in prefetched.accounts:
        children = prefetched.children.get(account.id, [])  # locked when prefetched
    else:
        children = (
            await session.scalars(
                select(Account)
                .where(Account.tenant_id == tenant.id, Account.parent_id == account.id)
                .order_by(Account.id)
                .with_for_update()
            )
        ).all()
    for child in children:
        if (await standing_source(session, tenant, child)).id == account.id:
            await refresh_account(session, tenant, child, now, book=book, prefetched=prefetched)


async def refresh_family(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> None:
    """Re-publish ``account`` and the children whose standing follows it: what every change
    to an account's invoices or payments needs."""
    await refresh_account(session, tenant, account, now, book=book, prefetched=prefetched)
    await refresh_followers(session, tenant, account, now, book=book, prefetched=prefetched)


async def reevaluate_tenant(session: AsyncSession, tenant_id: str, now: datetime) -> None:
    """Have the scheduler re-evaluate (and re-publish) every account of the tenant now; an
    account already due earlier keeps its moment, so catching up skips nothing."""
    await session.execute(
        update(Account)
        .where(
            Account.tenant_id == tenant_id,
            or_(Account.next_evaluation_at.is_(None), Account.next_evaluation_at > now),
        )
        .values(next_evaluation_at=now)
    )


async def lock_account(session: AsyncSession, tenant_id: str, account_id: str) -> Account | None:
    """Load one account of one tenant, locked for update where the database can."""
    return await session.scalar(
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.id == account_id)
        .with_for_update()
    )
