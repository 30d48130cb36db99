"""What an account's evaluation publishes to the gateways, and when it is evaluated next.

``standing.entitlements.refresh_account`` loads an account's evaluation, acts on it
(cancellation, collection, messages) and writes what these rules decide:

- ``while_charged``: an account whose invoice falls due *and is being charged now* stays in
  good standing until the charge's outcome, as a subscription stays active while its
  invoice's payment is attempted.
- ``publish``: the standing the gateways answer (dunning-exempt subscriptions keep their
  access while the account is suspended for non-payment), the features a degraded account
  keeps, how long the answer holds (``valid_until``) and what it lapses to, and the next
  moment the account must be looked at again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from billing_worker.domain.moments import earliest, next_moment
from billing_worker.domain.standing import StandingResult
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

    @property
    def grants_anything(self) -> bool:
        return self.plan is not None or bool(self.features)


@dataclass(frozen=True, slots=True)
class Degrading:
    """What a degraded account keeps: these features (None: all it has) and whether it is
    read-only -- the dunning policy's say, else the tenant's."""

    features: tuple[str, ...] | None = None
    read_only: bool = True


@dataclass(frozen=True, slots=True)
class Publication:
    """What the gateways answer for an account until it is evaluated again."""

    standing: Standing
    reason: str
    plan: str | None
    features: tuple[str, ...]
    seat_limit: int | None
    session_policy: SessionPolicy
    read_only: bool
    #: Until when the answer holds without the worker (None: until it changes).
    valid_until: datetime | None
    #: What the account becomes at ``valid_until`` when the dunning ladder decides it.
    lapse_standing: Standing | None
    lapse_reason: str | None
    #: When the account must be evaluated next (None: only an event changes it).
    next_evaluation_at: datetime | None


def while_charged(
    result: StandingResult, collect_at: datetime | None, now: datetime
) -> StandingResult:
    """The standing while a charge for an invoice falling due right now is being made:
    good, until the charge's outcome (a renewal paid by card never shows as owing; a
    decline puts the account in grace at once). Grace at 0 days past due grants the same
    access, so no gateway decision depends on it."""
    ladder = result.dunning
    if (
        collect_at == now
        and result.standing is Standing.GRACE
        and ladder is not None
        and ladder.days_past_due == 0
    ):
        return replace(result, standing=Standing.ACTIVE, reason=Reason.IN_GOOD_STANDING)
    return result


def publish(
    result: StandingResult,
    access: Access,
    *,
    exempt: Access | None,
    degrading: Degrading,
    next_bill: datetime | None,
    next_summary: datetime | None,
    now: datetime,
) -> Publication:
    """What the evaluation ``result`` and the subscriptions' ``access`` publish as of ``now``.

    Args:
        exempt: what the account's dunning-exempt subscriptions alone grant, if it has any;
            they keep their access while it is suspended for non-payment (not by hand).
        degrading: what degraded means for the account.
        next_bill: the start of the account's next billing day.
        next_summary: when a parent's summary draft next commits itself.
    """
    published = result
    if (
        not result.standing.grants_access
        and result.reason != Reason.SUSPENDED_MANUALLY
        and exempt is not None
        and exempt.grants_anything
    ):
        access = exempt
        published = replace(
            result, standing=Standing.ACTIVE, reason=Reason.SUBSCRIPTION_EXEMPT, access_until=None
        )
    valid_until = earliest(published.access_until, access.ends_at)
    if not published.standing.grants_access:
        valid_until = None
    moment = next_moment(
        billing=earliest(next_bill, next_summary),
        dunning=result.next_change_at,
        access=access.next_change_at,
    )
    features, read_only = access.features, False
    if published.standing is Standing.DEGRADED:
        read_only = degrading.read_only
        if degrading.features is not None:
            features = tuple(f for f in features if f in degrading.features)
    lapses = (
        valid_until is not None
        and published.lapses_to is not None
        and published.access_until is not None
        and valid_until >= published.access_until
    )  # when a subscription's end decides ``valid_until`` instead, the lapse is not said
    return Publication(
        standing=published.standing,
        reason=published.reason,
        plan=access.plan,
        features=features,
        seat_limit=access.seat_limit,
        session_policy=access.session_policy,
        read_only=read_only,
        valid_until=valid_until,
        lapse_standing=published.lapses_to if lapses else None,
        lapse_reason=Reason.PAYMENT_OVERDUE if lapses else None,
        # Due again at once rather than in the past (a local day that began before ``now``):
        # an account is never processed as of an instant before one it was processed at.
        next_evaluation_at=max(moment, now) if moment else None,
    )
