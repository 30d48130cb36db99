"""Subscription rows to the domain's terms and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billing_worker.db.models import Subscription
from billing_worker.domain.catalog import PhaseType
from billing_worker.domain.revenue import monthly_amount, segment_on
from billing_worker.domain.statuses import SubscriptionStatus
from billing_worker.domain.subscriptions import (
    Cancellation,
    CatalogAt,
    CycleChange,
    Pause,
    PlanChange,
    PriceOverride,
    QuantityChange,
    Terms,
)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _amount(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def overrides_of(rows: Sequence[dict[str, Any]] | None) -> tuple[PriceOverride, ...]:
    """Stored negotiated prices to the domain's."""
    return tuple(
        PriceOverride(PhaseType(r["phase"]), _amount(r.get("fixed")), _amount(r.get("recurring")))
        for r in rows or ()
    )


def override_rows(overrides: Sequence[PriceOverride]) -> list[dict[str, Any]] | None:
    """Negotiated prices as stored (amounts as decimal strings); None for none."""
    if not overrides:
        return None
    return [
        {"phase": o.phase.value,
         "fixed": None if o.fixed is None else str(o.fixed),
         "recurring": None if o.recurring is None else str(o.recurring)}
        for o in overrides
    ]  # fmt: skip


def terms_of(sub: Subscription) -> Terms:
    changes: list[PlanChange] = []
    quantities: list[QuantityChange] = []
    pauses: list[Pause] = []
    holds: list[Pause] = []
    cycles: list[CycleChange] = []
    for event in sub.events:
        kind = event["type"]
        if kind == "change":
            changes.append(
                PlanChange(
                    effective=date.fromisoformat(event["effective"]),
                    plan=event["plan"],
                    price_list=event["price_list"],
                    restart_phases=event["restart_phases"],
                    price_overrides=overrides_of(event.get("price_overrides")),
                )
            )
        elif kind == "quantity":
            quantities.append(
                QuantityChange(date.fromisoformat(event["effective"]), event["quantity"])
            )
        elif kind in ("pause", "hold"):
            pause = Pause(date.fromisoformat(event["start"]), _day(event.get("resume")))
            (pauses if kind == "pause" else holds).append(pause)
        elif kind == "cycle_day":
            cycles.append(
                CycleChange(date.fromisoformat(event["effective"]), event["day"], event["previous"])
            )
    cancellation = None
    if sub.entitlement_end is not None and sub.billing_end is not None:
        cancellation = Cancellation(
            entitlement_end=sub.entitlement_end, billing_end=sub.billing_end
        )
    return Terms(
        id=sub.id,
        plan=sub.plan,
        entitlement_start=sub.entitlement_start,
        billing_start=sub.billing_start,
        price_list=sub.price_list,
        quantity=sub.quantity,
        cycle_day=sub.cycle_day,
        base_id=sub.base_id,
        changes=tuple(changes),
        quantities=tuple(quantities),
        pauses=tuple(pauses),
        holds=tuple(holds),
        cancellation=cancellation,
        cycle_changes=tuple(sorted(cycles, key=lambda c: c.effective)),
        price_overrides=overrides_of(sub.price_overrides),
    )


def save_terms(sub: Subscription, terms: Terms) -> None:
    """Write ``terms`` back; events keep the order they were made in."""
    events: list[dict[str, Any]] = [
        {
            "type": "change",
            "effective": c.effective.isoformat(),
            "plan": c.plan,
            "price_list": c.price_list,
            "restart_phases": c.restart_phases,
        }
        | ({"price_overrides": override_rows(c.price_overrides)} if c.price_overrides else {})
        for c in terms.changes
    ]
    events += [
        {"type": "quantity", "effective": q.effective.isoformat(), "quantity": q.quantity}
        for q in terms.quantities
    ]
    events += [
        {
            "type": kind,
            "start": p.start.isoformat(),
            "resume": p.resume.isoformat() if p.resume else None,
        }
        for kind, spans in (("pause", terms.pauses), ("hold", terms.holds))
        for p in spans
    ]
    events += [cycle_event(c) for c in terms.cycle_changes]
    sub.events = events
    sub.entitlement_end = terms.cancellation.entitlement_end if terms.cancellation else None
    sub.billing_end = terms.cancellation.billing_end if terms.cancellation else None
    sub.quantity = terms.quantity


def cycle_event(change: CycleChange) -> dict[str, Any]:
    """The stored form of a change of the account's cycle day."""
    return {"type": "cycle_day", "effective": change.effective.isoformat(), "day": change.day,
            "previous": change.previous}  # fmt: skip


def touch_billing(sub: Subscription, day: date) -> None:
    """Billing from ``day`` may change: make the next invoicing run look back that far."""
    floor = day - timedelta(days=1)
    sub.reconcile_from = min(sub.reconcile_from, floor) if sub.reconcile_from else None


def mark_today(sub: Subscription, catalog_at: CatalogAt, today: date, currency: str) -> None:
    """Keep the subscription's phase and status as of ``today`` on its row: ``expired``
    once its entitlement has ended, so the change is one the audit log and the lifecycle
    events see (``subscription.phase_changed``, ``subscription.expired``); and the plan
    billed today with its recurring price per month (the console's MRR)."""
    segment = segment_on(terms_of(sub), catalog_at, today)
    value = segment.phase.value if segment is not None else None
    if sub.phase != value:
        sub.phase = value
    plan = segment.plan if segment is not None else None
    monthly = monthly_amount(segment, catalog_at, currency).minor if segment else None
    if (sub.plan_now, sub.monthly_minor) != (plan, monthly):
        sub.plan_now, sub.monthly_minor = plan, monthly
    ended = sub.entitlement_end is not None and sub.entitlement_end <= today
    status = SubscriptionStatus.EXPIRED if ended else SubscriptionStatus.ACTIVE
    if sub.status != status:
        sub.status = status
