"""Recompute what an account may do from SQL, act on it and owe the new record to Redis:
load (``standing.evaluation``), decide (``domain.publication``), write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Subscription, Tenant
from billing_worker.domain.moments import RealTime, on_time
from billing_worker.domain.publication import Degrading, Publication, publish, while_charged
from billing_worker.domain.standing import StandingResult
from billing_worker.invoicing import prefetch
from billing_worker.invoicing.catalogs import CatalogBook, load_book
from billing_worker.invoicing.invoicer import bill_to, local_midnight, local_today
from billing_worker.invoicing.prefetch import Prefetched
from billing_worker.invoicing.summaries import next_commit
from billing_worker.invoicing.terms import mark_today
from billing_worker.publishing.outbox import stage_record
from billing_worker.standing.consequences import (
    advise,
    chargeable,
    enter_cancelled_stage,
    hold_billing,
    schedule_collection,
)
from billing_worker.standing.evaluation import access_of, evaluate_account, standing_source
from billing_worker.standing.history import record_change
from shared.entitlement import EntitlementRecord
from shared.states import Standing


async def refresh_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
    real: RealTime | None = None,
) -> EntitlementRecord:
    """Re-evaluate the account as of ``now``, store its standing, act on the ladder
    (cancellation, collection, messages: seen by the outside world as ``real`` says,
    default as of ``now``) and stage the new record (``domain.publication`` decides it).

    The caller holds the account row (``lock_account``) so versions never collide.
    """
    found = await evaluate_account(session, tenant, account, now, book=book, prefetched=prefetched)
    book = await _keep_today(session, tenant, account, found.subscriptions, book, now)
    if found.result.standing is Standing.CANCELLED and found.result.dunning is not None:
        book = book or await load_book(session, tenant.id)
        await enter_cancelled_stage(session, account, found, book, now)
    if found.source is account and await chargeable(session, account, prefetched):
        schedule_collection(account, found, now)
        found = replace(found, result=while_charged(found.result, account.collect_at, now))
    previous = _store_standing(session, account, found.result, now)
    if found.source is account and (await bill_to(session, account)).id == account.id:
        hold_billing(account, found, now)
    known = prefetched.message_keys if prefetched and account.id in prefetched.accounts else None
    await advise(session, tenant, account, found, previous, now, known, real or on_time(now))

    kept = [sub for sub in found.subscriptions if sub.dunning_exempt]
    exempt = None
    if kept and book is not None:  # the book is loaded whenever there are subscriptions
        exempt = access_of(kept, book, local_today(now, account.timezone), account.timezone)
    policy = found.policy
    next_bill = account.next_bill_on
    published = publish(
        found.result,
        found.access,
        exempt=exempt,
        degrading=Degrading(
            features=policy.degraded_features,
            read_only=(
                tenant.degraded_read_only
                if policy.degraded_read_only is None
                else policy.degraded_read_only
            ),
        ),
        next_bill=local_midnight(next_bill, account.timezone) if next_bill else None,
        next_summary=await next_commit(session, tenant, account, prefetched),
        now=now,
    )
    account.ent_version += 1
    account.valid_until = published.valid_until
    account.next_evaluation_at = published.next_evaluation_at
    record = _record(tenant, account, published)
    account.ent_record = stage_record(session, record, now)
    answer = answer_of(record)
    if account.entitlement != answer:
        account.entitlement = answer
    return record


def _store_standing(
    session: AsyncSession, account: Account, result: StandingResult, now: datetime
) -> str:
    """Keep the standing on the account, with a history row when it changed; returns the
    standing it had."""
    previous, previous_reason = account.standing, account.standing_reason
    account.standing, account.standing_reason = result.standing.value, result.reason
    if (previous, previous_reason) != (account.standing, account.standing_reason):
        record_change(
            session,
            tenant_id=account.tenant_id,
            account_id=account.id,
            effective_at=now,
            standing=account.standing,
            reason=account.standing_reason,
            previous_standing=previous,
        )
    return previous


def _record(tenant: Tenant, account: Account, published: Publication) -> EntitlementRecord:
    valid_until = published.valid_until
    return EntitlementRecord(
        tenant_id=tenant.id,
        account_id=account.id,
        version=account.ent_version,
        standing=published.standing,
        reason=published.reason,
        valid_until=int(valid_until.timestamp()) if valid_until else None,
        seat_limit=published.seat_limit,
        session_policy=published.session_policy,
        features=published.features,
        plan=published.plan,
        read_only=published.read_only,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
        lapse_standing=published.lapse_standing,
        lapse_reason=published.lapse_reason,
    )


def answer_of(record: EntitlementRecord) -> dict[str, Any]:
    """What the gateways answer from a record, without its version and time bound (which
    move with every renewal): a change of it is an ``entitlement.changed`` event."""
    return {
        "standing": record.standing.value,
        "reason": record.reason,
        "plan": record.plan,
        "features": sorted(record.features),
        "seat_limit": record.seat_limit,
        "session_policy": record.session_policy.value,
        "read_only": record.read_only,
    }


async def _keep_today(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    subs: Sequence[Subscription],
    book: CatalogBook | None,
    now: datetime,
) -> CatalogBook | None:
    """Keep each subscription's phase and status as of the account's today on its row
    (``terms.mark_today``); returns the catalog book, loaded if it had to be."""
    if not subs:
        return book
    book = book or await load_book(session, tenant.id)
    today = local_today(now, account.timezone)
    for sub in subs:
        mark_today(sub, book.at, today, account.currency)
    return book


async def refresh_followers(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
    real: RealTime | None = None,
) -> None:
    """Re-publish the children whose standing follows ``account`` (locked parent first);
    a parked child's time stands still until it is released."""
    for child in await prefetch.children(session, account, prefetched, lock=True):
        if (
            child.parked_at is None
            and (await standing_source(session, tenant, child)).id == account.id
        ):
            await refresh_account(
                session, tenant, child, now, book=book, prefetched=prefetched, real=real
            )


async def refresh_family(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
    real: RealTime | None = None,
) -> None:
    """Re-publish ``account`` and the children whose standing follows it: what every change
    to an account's invoices or payments needs."""
    await refresh_account(
        session, tenant, account, now, book=book, prefetched=prefetched, real=real
    )
    await refresh_followers(
        session, tenant, account, now, book=book, prefetched=prefetched, real=real
    )


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
