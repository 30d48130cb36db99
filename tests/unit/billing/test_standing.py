from datetime import UTC, datetime, timedelta

import pytest

from billing_worker.domain.dunning import classic_with
from billing_worker.domain.standing import (
    RenewalOutlook,
    UnpaidInvoice,
    evaluate_standing,
)
from shared.money import Money
from shared.states import Standing

DUE = datetime(2027, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = classic_with(30)


def unpaid(amount: str = "49.00", due: datetime = DUE) -> UnpaidInvoice:
    return UnpaidInvoice(invoice_id="inv_1", due_at=due, balance=Money.parse(amount, "USD"))


@pytest.mark.parametrize(
    ("now", "standing", "reason"),
    [
        (DUE - DAY, Standing.ACTIVE, "in_good_standing"),
        (DUE, Standing.GRACE, "payment_due"),  # day 1 past due
        (DUE + 29 * DAY + timedelta(hours=23), Standing.GRACE, "payment_due"),  # still day 30
        (DUE + 30 * DAY, Standing.SUSPENDED, "payment_overdue"),  # day 31
        (DUE + 400 * DAY, Standing.SUSPENDED, "payment_overdue"),
    ],
)
def test_thirty_days_of_grace_then_suspension_on_day_31(
    now: datetime, standing: Standing, reason: str
) -> None:
    result = evaluate_standing(
        unpaid=[unpaid()], renewals=[], has_active_subscription=True, policy=POLICY, now=now
    )
    assert (result.standing, result.reason) == (standing, reason)


def test_grace_says_when_suspension_comes_and_wakes_daily_for_reminders() -> None:
    result = evaluate_standing(
        unpaid=[unpaid()], renewals=[], has_active_subscription=True, policy=POLICY, now=DUE + DAY
    )
    assert result.next_change_at == DUE + 2 * DAY  # the next daily reminder
    assert result.access_until == DUE + 30 * DAY
    last = evaluate_standing(
        unpaid=[unpaid()], renewals=[], has_active_subscription=True, policy=POLICY,
        now=DUE + 29 * DAY + timedelta(hours=23),
    )  # fmt: skip
    assert last.standing is Standing.GRACE
    assert last.next_change_at == DUE + 30 * DAY


def test_a_manual_suspension_wins_and_an_exemption_ignores_the_invoices() -> None:
    overdue = {"unpaid": [unpaid()], "renewals": [], "has_active_subscription": True,
               "policy": POLICY, "now": DUE + 40 * DAY}  # fmt: skip
    assert evaluate_standing(**overdue).standing is Standing.SUSPENDED  # type: ignore[arg-type]
    exempt = evaluate_standing(**overdue, exempt=True)  # type: ignore[arg-type]
    assert (exempt.standing, exempt.reason) == (Standing.ACTIVE, "dunning_exempt")
    held = evaluate_standing(**overdue, exempt=True, suspended_manually=True)  # type: ignore[arg-type]
    assert (held.standing, held.reason) == (Standing.SUSPENDED, "suspended_manually")


def test_paid_up_account_is_active_until_the_next_renewal_could_lapse() -> None:
    renewal = RenewalOutlook(next_invoice_at=DUE + 31 * DAY, net_terms=timedelta(days=7))
    result = evaluate_standing(
        unpaid=[], renewals=[renewal], has_active_subscription=True, policy=POLICY, now=DUE
    )
    assert result.standing is Standing.ACTIVE
    assert result.next_change_at == DUE + 31 * DAY
    assert result.access_until == DUE + 31 * DAY + 7 * DAY + 30 * DAY


def test_zero_balance_invoice_does_not_count() -> None:
    result = evaluate_standing(
        unpaid=[unpaid("0.00")],
        renewals=[],
        has_active_subscription=True,
        policy=POLICY,
        now=DUE + 90 * DAY,
    )
    assert result.standing is Standing.ACTIVE


def test_without_a_subscription_the_account_is_cancelled() -> None:
    result = evaluate_standing(
        unpaid=[], renewals=[], has_active_subscription=False, policy=POLICY, now=DUE
    )
    assert (result.standing, result.reason) == (Standing.CANCELLED, "no_active_subscription")


def test_oldest_overdue_invoice_decides() -> None:
    older = unpaid(due=DUE - 20 * DAY)
    newer = unpaid(due=DUE)
    result = evaluate_standing(
        unpaid=[newer, older],
        renewals=[],
        has_active_subscription=True,
        policy=POLICY,
        now=DUE + 10 * DAY,
    )
    assert result.standing is Standing.SUSPENDED
