from dataclasses import replace

import pytest

from gateway.decisions.decision import decide
from shared.entitlement import EntitlementRecord, UserEntry, decode_record, encode_record
from shared.states import Standing, UserStatus

NOW = 1_800_000_000.0
USER = UserEntry(tenant_id="t", user_id="u", account_id="a", status=UserStatus.ACTIVE, version=1)
RECORD = EntitlementRecord(
    tenant_id="t",
    account_id="a",
    version=3,
    standing=Standing.ACTIVE,
    reason="in_good_standing",
    valid_until=int(NOW) + 60,
    features=("reports",),
)


@pytest.mark.parametrize(
    ("user", "record", "feature", "allow", "reason"),
    [
        (USER, RECORD, None, True, "in_good_standing"),
        (USER, RECORD, "reports", True, "in_good_standing"),
        (USER, RECORD, "sso", False, "feature_not_included"),
        (None, RECORD, None, False, "unknown_user"),
        (replace(USER, status=UserStatus.DELETED), RECORD, None, False, "unknown_user"),
        (replace(USER, status=UserStatus.DISABLED), RECORD, None, False, "user_disabled"),
        (USER, None, None, False, "no_entitlement"),  # an emptied Redis never allows
        (USER, replace(RECORD, account_id="other"), None, False, "no_entitlement"),
        (USER, replace(RECORD, standing=Standing.GRACE, reason="payment_due"), None, True,
         "payment_due"),
        (USER, replace(RECORD, standing=Standing.SUSPENDED, reason="payment_overdue"), None,
         False, "payment_overdue"),
        (USER, replace(RECORD, standing=Standing.CANCELLED, reason="no_active_subscription"),
         None, False, "no_active_subscription"),
        (USER, replace(RECORD, valid_until=int(NOW)), None, False, "entitlement_expired"),
        (USER, replace(RECORD, valid_until=None), None, True, "in_good_standing"),
    ],
)  # fmt: skip
def test_decision_table(
    user: UserEntry | None,
    record: EntitlementRecord | None,
    feature: str | None,
    allow: bool,
    reason: str,
) -> None:
    decision = decide(user, record, NOW, feature)
    assert (decision.allow, decision.reason) == (allow, reason)


def test_an_expired_record_reports_what_the_account_became_never_its_old_standing() -> None:
    grace = replace(
        RECORD, standing=Standing.GRACE, reason="payment_due", valid_until=int(NOW),
        lapse_standing=Standing.SUSPENDED, lapse_reason="payment_overdue",
    )  # fmt: skip
    decision = decide(USER, grace, NOW)
    assert (decision.allow, decision.reason, decision.standing) == (
        False, "entitlement_expired", Standing.SUSPENDED,
    )  # fmt: skip
    unknown = decide(USER, replace(grace, lapse_standing=None, lapse_reason=None), NOW)
    assert unknown.standing is None  # not "grace": what follows is not known here


def test_the_lapse_survives_encoding_and_older_records_decode_without_one() -> None:
    record = replace(RECORD, lapse_standing=Standing.SUSPENDED, lapse_reason="payment_overdue")
    assert decode_record(encode_record(record)) == record
    assert decode_record(encode_record(RECORD)).lapse_standing is None
