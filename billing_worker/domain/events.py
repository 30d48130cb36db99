"""The lifecycle events a tenant's webhook endpoints can receive, and the rule that names
the events one committed change makes.

A change is what the audit log records (``billing_worker.db.audit``): an object's type and
id, ``created``/``updated``/``deleted`` and its fields before and after. Each event type
is named after the object and what happened to it, so a receiver subscribes to what it
cares about (``invoice.paid``) rather than to fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Every event type, with when it is sent (docs/events.md and the OpenAPI document's
#: ``webhooks`` section are written from this).
CATALOGUE: dict[str, str] = {
    "account.created": "An account was created.",
    "account.updated": "An account's details changed (name, email, collection, time zone, "
    "cycle day, dunning policy, price list...).",
    "account.parked": "The worker set an account aside: processing it failed, or a charge's "
    "outcome could not be learned (the error says what to do); its billing waits until it "
    "is released.",
    "account.released": "A parked account was released and is billed again.",
    "standing.changed": "An account's standing or its reason changed (previous and new).",
    "entitlement.changed": "What the gateways answer for an account changed: its standing, "
    "plan, features, seat limit, session policy or read-only flag (previous and new).",
    "subscription.created": "A subscription was created.",
    "subscription.changed": "A subscription's plan, price list or seats change, now or "
    "from a later date.",
    "subscription.cancelled": "A subscription was cancelled (its entitlement and billing "
    "end dates are set).",
    "subscription.uncancelled": "A pending cancellation was withdrawn.",
    "subscription.paused": "A subscription was paused (from its start date).",
    "subscription.resumed": "A paused subscription got its resume date.",
    "subscription.phase_changed": "A subscription entered its next phase (a trial became "
    "paid, a discount ended): the phase before and after.",
    "subscription.expired": "A subscription's entitlement ended (its cancellation took effect).",
    "invoice.created": "An invoice was created (a draft, or issued at once).",
    "invoice.committed": "An invoice was issued: created open, or a draft committed.",
    "invoice.paid": "An invoice was paid in full.",
    "invoice.voided": "An invoice was voided.",
    "invoice.written_off": "What an invoice still owed was written off.",
    "payment.succeeded": "A payment was received (a charge that succeeded, or recorded).",
    "payment.failed": "A charge was declined or failed.",
    "payment.refunded": "(Part of) a payment was refunded.",
    "usage.folded": "The gateways' counters of an account's day (logins, active users, "
    "peak sessions) were folded into billing and grew: the day's totals so far.",
}

#: Frequent events an endpoint receives only when it names them: ``*`` means every other
#: type (a fold comes about once a minute for every active account).
BY_NAME_ONLY = frozenset({"usage.folded"})


def wanted(types: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``types`` receives ``event_type``."""
    return event_type in types or ("*" in types and event_type not in BY_NAME_ONLY)


#: Account fields whose change is the standing's, not the account's details.
_STANDING = frozenset(("standing", "standing_reason"))
#: Account fields the worker keeps (credit, parking, a hard decline): no event of their own.
_KEPT = frozenset(("credit_minor", "parked_at", "parked_error", "hard_declined"))
_INVOICE_STATUS = {"paid": "invoice.paid", "void": "invoice.voided",
                   "written_off": "invoice.written_off"}  # fmt: skip


def _after(changes: Mapping[str, Any], field: str) -> Any:
    return changes[field][1] if field in changes else None


def _subscription_updates(changes: Mapping[str, Any]) -> list[str]:
    out = []
    if "phase" in changes and None not in changes["phase"]:  # not a pause, nor the first
        out.append("subscription.phase_changed")
    if _after(changes, "status") == "expired":
        out.append("subscription.expired")
    if "entitlement_end" in changes:
        before, after = changes["entitlement_end"]
        out.append("subscription.cancelled" if after else "subscription.uncancelled")
        if before and after:  # a cancellation moved: cancelled again, on the new date
            out = ["subscription.cancelled"]
    if changes.keys() & {"plan", "price_list", "quantity"}:
        out.append("subscription.changed")
    if "events" in changes:
        before, after = changes["events"]
        added = after["added"] if isinstance(after, dict) else [
            e for e in after if e not in (before or [])
        ]  # fmt: skip
        removed = [] if isinstance(after, dict) else [e for e in before or [] if e not in after]
        kinds = {e["type"] for e in added}
        if kinds & {"change", "quantity"} and "subscription.changed" not in out:
            out.append("subscription.changed")
        for pause in (e for e in added if e["type"] == "pause"):
            resumed = any(r["type"] == "pause" and r["start"] == pause["start"] for r in removed)
            out.append("subscription.resumed" if resumed else "subscription.paused")
        starts = {e["start"] for e in added if e["type"] == "pause"}
        if any(r["type"] == "pause" and r["start"] not in starts for r in removed):
            out.append("subscription.resumed")  # resumed on the day it was paused: undone
    return out


def _account(action: str, changes: Mapping[str, Any]) -> list[str]:
    if action == "created":
        return ["account.created"]
    out = ["account.updated"] if changes.keys() - _STANDING - _KEPT - {"entitlement"} else []
    out += ["standing.changed"] if changes.keys() & _STANDING else []
    if "parked_at" in changes:
        out.append("account.released" if changes["parked_at"][1] is None else "account.parked")
    # the first answer (an account's first evaluation) is no change of what was answered
    if "entitlement" in changes and changes["entitlement"][0] is not None:
        out.append("entitlement.changed")
    return out


def _subscription(action: str, changes: Mapping[str, Any]) -> list[str]:
    return ["subscription.created"] if action == "created" else _subscription_updates(changes)


def _invoice(action: str, changes: Mapping[str, Any]) -> list[str]:
    out = ["invoice.created"] if action == "created" else []
    status = _after(changes, "status")
    if status == "open" or (action == "created" and status in _INVOICE_STATUS):
        out.append("invoice.committed")  # issued (a $0 invoice is issued and settled at once)
    if status in _INVOICE_STATUS:
        out.append(_INVOICE_STATUS[status])
    return out


def _payment(action: str, changes: Mapping[str, Any]) -> list[str]:
    return ["payment.succeeded"] if action == "created" else []


def _refund(action: str, changes: Mapping[str, Any]) -> list[str]:
    return ["payment.refunded"] if action == "created" else []


def _attempt(action: str, changes: Mapping[str, Any]) -> list[str]:
    return ["payment.failed"] if _after(changes, "status") in ("declined", "failed") else []


def _usage_day(action: str, changes: Mapping[str, Any]) -> list[str]:
    return ["usage.folded"] if changes.keys() - {"day"} else []


_RULES = {
    "account": _account,
    "subscription": _subscription,
    "invoice": _invoice,
    "payment": _payment,
    "refund": _refund,
    "payment_attempt": _attempt,
    "usage_day": _usage_day,
}


def events_of(object_type: str, action: str, changes: Mapping[str, Any]) -> list[str]:
    """The event types a change makes, in the order a receiver should see them."""
    rule = _RULES.get(object_type)
    return rule(action, changes) if rule is not None else []
