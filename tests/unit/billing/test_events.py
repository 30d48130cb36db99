"""The lifecycle events a committed change makes, and their published catalogue."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from billing_worker.domain.events import CATALOGUE, events_of, wanted
from billing_worker.notifications.notifier import MAX_ATTEMPTS, backoff

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events.md"


@pytest.mark.parametrize(
    ("object_type", "action", "changes", "expected"),
    [
        ("account", "created", {"name": [None, "A"]}, ["account.created"]),
        ("account", "updated", {"name": ["A", "B"]}, ["account.updated"]),
        ("account", "updated", {"standing": ["active", "grace"]}, ["standing.changed"]),
        ("account", "updated", {"credit_minor": [0, 500]}, []),  # bookkeeping of its own
        ("account", "updated", {"email": [None, "x@y.z"], "standing_reason": ["a", "b"]},
         ["account.updated", "standing.changed"]),
        ("account", "updated", {"entitlement": [{"plan": None}, {"plan": "pro"}]},
         ["entitlement.changed"]),
        ("account", "updated", {"entitlement": [None, {"plan": None}]}, []),  # the first answer
        ("account", "updated", {"standing": ["grace", "suspended"],
                                "entitlement": [{"plan": "pro"}, {"plan": None}]},
         ["standing.changed", "entitlement.changed"]),
        ("subscription", "created", {"plan": [None, "pro"]}, ["subscription.created"]),
        ("subscription", "updated", {"entitlement_end": [None, "2027-02-01"]},
         ["subscription.cancelled"]),
        ("subscription", "updated", {"entitlement_end": ["2027-02-01", None]},
         ["subscription.uncancelled"]),
        ("subscription", "updated", {"quantity": [1, 5]}, ["subscription.changed"]),
        ("subscription", "updated",
         {"events": [None, {"added": [{"type": "pause", "start": "2027-01-05", "resume": None}]}]},
         ["subscription.paused"]),
        ("subscription", "updated",
         {"events": [[{"type": "pause", "start": "2027-01-05", "resume": None}],
                     [{"type": "pause", "start": "2027-01-05", "resume": "2027-01-20"}]]},
         ["subscription.resumed"]),
        ("subscription", "updated",
         {"events": [[{"type": "pause", "start": "2027-01-05", "resume": None}], []]},
         ["subscription.resumed"]),  # resumed the day it was paused: the pause is undone
        ("subscription", "updated",
         {"events": [[], [{"type": "change", "effective": "2027-02-01", "plan": "team"}]]},
         ["subscription.changed"]),
        ("subscription", "updated", {"phase": ["trial", "evergreen"]},
         ["subscription.phase_changed"]),
        ("subscription", "updated", {"phase": ["evergreen", None]}, []),  # a pause
        ("subscription", "updated", {"phase": [None, "trial"]}, []),  # kept the first time
        ("subscription", "updated", {"status": ["active", "expired"]}, ["subscription.expired"]),
        ("invoice", "created", {"status": [None, "draft"]}, ["invoice.created"]),
        ("invoice", "created", {"status": [None, "open"]},
         ["invoice.created", "invoice.committed"]),
        ("invoice", "created", {"status": [None, "paid"]},
         ["invoice.created", "invoice.committed", "invoice.paid"]),
        ("invoice", "updated", {"status": ["draft", "open"]}, ["invoice.committed"]),
        ("invoice", "updated", {"status": ["open", "paid"]}, ["invoice.paid"]),
        ("invoice", "updated", {"status": ["open", "void"]}, ["invoice.voided"]),
        ("invoice", "updated", {"status": ["open", "written_off"]}, ["invoice.written_off"]),
        ("invoice", "updated", {"paid_minor": [0, 100]}, []),  # partly paid: no event yet
        ("payment", "created", {"amount_minor": [None, 4900]}, ["payment.succeeded"]),
        ("refund", "created", {"amount_minor": [None, 100]}, ["payment.refunded"]),
        ("payment_attempt", "created", {"status": [None, "pending"]}, []),
        ("payment_attempt", "updated", {"status": ["pending", "declined"]}, ["payment.failed"]),
        ("payment_attempt", "updated", {"status": ["pending", "succeeded"]}, []),
        ("api_key", "created", {"kind": [None, "admin"]}, []),
        ("usage_day", "created", {"day": [None, "2027-01-05"], "logins": [None, 2]},
         ["usage.folded"]),
        ("usage_day", "updated", {"logins": [2, 5]}, ["usage.folded"]),
    ],
)  # fmt: skip
def test_a_change_makes_the_events_a_receiver_expects(
    object_type: str, action: str, changes: dict[str, Any], expected: list[str]
) -> None:
    made = events_of(object_type, action, changes)
    assert made == expected
    assert set(made) <= CATALOGUE.keys()


def test_the_documented_catalogue_is_the_one_sent() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text(), re.MULTILINE))
    assert documented == set(CATALOGUE)


def test_a_failing_delivery_is_tried_for_about_three_days_with_growing_spacing() -> None:
    waits = [backoff(n) for n in range(1, MAX_ATTEMPTS)]  # after each failed attempt
    assert waits == sorted(waits)  # never sooner than the last time
    assert waits[0] == timedelta(minutes=1)
    last = sum(waits, timedelta())  # from the first attempt to the last
    assert timedelta(days=3) <= last <= timedelta(days=3, hours=2)


@pytest.mark.parametrize(
    ("types", "event_type", "received"),
    [
        (["*"], "invoice.paid", True),
        (["*"], "usage.folded", False),  # once a minute per active account: only by name
        (["*", "usage.folded"], "usage.folded", True),
        (["usage.folded"], "usage.folded", True),
        (["invoice.paid"], "invoice.voided", False),
    ],
)
def test_every_type_means_every_type_but_the_frequent_ones(
    types: list[str], event_type: str, received: bool
) -> None:
    assert wanted(types, event_type) is received
