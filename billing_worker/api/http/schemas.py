"""Request and response bodies. The same types validate input and describe the OpenAPI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from billing_worker.api.http.bounds import TargetDate
from billing_worker.api.http.errors import worded

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[
    str, Meta(max_length=320, pattern=worded(r"^[^@\s]+@[^@\s]+$",
              "must be an email address such as ann@example.com"))
]  # fmt: skip
ExternalId = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=worded(r"^[^\s{}\x00-\x1f]+$",
              "may not hold spaces, braces or control characters"),
              description="Your own identifier; no spaces, braces or control characters.")
]  # fmt: skip
Currency = Annotated[
    str, Meta(pattern=worded(r"^[A-Z]{3}$", "must be a three-letter ISO 4217 code such as USD"),
              description="ISO 4217 code, e.g. USD")
]  # fmt: skip
Amount = Annotated[
    str, Meta(pattern=worded(r"^\d{1,15}(\.\d{1,6})?$",
              'must be a decimal string without a sign, such as "12.50"'),
              description="Decimal string with at most the currency's digits, e.g. \"12.50\"")
]  # fmt: skip
TimeZone = Annotated[str, Meta(max_length=64, description="IANA zone, e.g. Europe/Paris")]
CycleDay = Annotated[int, Meta(ge=1, le=31, description="Billing cycle day (month-end fallback)")]
Code = Annotated[
    str, Meta(min_length=1, max_length=100, pattern=worded(r"^[a-z0-9][a-z0-9_.-]*$",
              "must be lowercase letters, digits, '_', '.' or '-', starting with a letter or "
              "digit"))
]  # fmt: skip


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """Request bodies refuse unknown fields, so a typo is an error and not a silent no-op."""


GraceDays = Annotated[int, Meta(ge=0, le=3650, description="Days past due before suspension")]
NetTerms = Annotated[int, Meta(ge=0, le=365, description="Days from invoice to due date")]
IdleSeconds = Annotated[int, Meta(ge=60, le=30 * 86400, description="Session idle expiry")]
FailOpen = Annotated[
    int, Meta(ge=0, le=3600,
              description="With Redis unreachable, serve last known decisions this long (0: deny)")
]  # fmt: skip


WebhookUrl = Annotated[
    str, Meta(max_length=500, pattern=worded(r"^https?://[^\s]+$",
              "must be an http:// or https:// address without spaces"), extra={"check": "url"},
              description="An http(s) address Tollgate posts signed webhooks to")
]  # fmt: skip


StripeKey = Annotated[
    str, Meta(max_length=200, pattern=worded(
        r"^((sk|rk)_(test|live)_[A-Za-z0-9]{8,}|env:[A-Z_][A-Z0-9_]{0,100})$",
        "must be a Stripe secret key (sk_test_…, sk_live_…, rk_…) or env:NAME, the worker's "
        "environment variable holding one"),
        description="The tenant's Stripe secret key, or env:NAME; write-only")
]  # fmt: skip


StripeWebhookSecret = Annotated[
    str, Meta(max_length=200, pattern=worded(
        r"^(whsec_[A-Za-z0-9]{8,}|env:[A-Z_][A-Z0-9_]{0,100})$",
        "must be a Stripe webhook signing secret (whsec_…) or env:NAME"),
        description="Verifies Stripe's webhooks; write-only")
]  # fmt: skip


CommitTime = Annotated[
    str, Meta(pattern=worded(r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
              "must be a time of day as HH:MM, such as 18:00"), description="HH:MM, e.g. 18:00")
]  # fmt: skip


class TenantOut(Struct, kw_only=True):
    id: str
    name: str
    grace_days: int
    net_terms_days: int
    session_idle_seconds: int
    fail_open_seconds: int
    degraded_read_only: bool
    draft_invoices: bool
    zero_amount_invoices: bool
    summary_commit_time: str | None
    channel_overdue: str
    notify_webhook_url: str | None
    notify_emails: list[str]
    notify_customer: bool
    #: Whether the tenant gave a Stripe secret key (the key itself is never shown).
    stripe_configured: bool
    #: Whether Stripe's webhooks to /v1/stripe/webhooks/{tenant} can be verified.
    stripe_webhooks_configured: bool


#: A postal address as its lines: ["Initech Inc", "4120 Freidrich Lane", "Austin TX 78744"].
Address = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=80)]], Meta(min_length=1, max_length=6)
]


class AccountCreate(Body):
    name: Name
    external_id: ExternalId | None = None
    email: Email | None = None
    #: Printed on its invoices.
    billing_address: Address | None = None
    kind: Literal["consumer", "enterprise", "reseller"] = "consumer"
    currency: Currency = "USD"
    net_terms_days: Annotated[int, Meta(ge=0, le=365)] | None = None
    timezone: TimeZone = "UTC"
    cycle_day: CycleDay | None = None
    parent_id: str | None = None
    payment_delegated: bool = False
    price_list: Code | None = None
    collection: Literal["automatic", "manual"] = "automatic"
    #: "draft": its invoices are drafts to review and commit; "held": nothing is invoiced
    #: until it is set back.
    invoicing: Literal["automatic", "draft", "held"] = "automatic"
    dunning_policy: Code | None = None


class Parked(Struct, kw_only=True):
    """Why and since when the worker set this aside (``POST …/release`` puts it back)."""

    at: datetime
    job: str | None
    error: str


class AccountOut(Struct, kw_only=True):
    id: str
    external_id: str | None
    name: str
    email: str | None
    billing_address: list[str] | None
    kind: str
    currency: str
    net_terms_days: int
    timezone: str
    cycle_day: int | None
    parent_id: str | None
    payment_delegated: bool
    price_list: str | None
    standing: str
    standing_reason: str
    valid_until: datetime | None
    balance_due: str
    credit: str
    collection: str
    invoicing: str
    dunning_policy: str | None
    dunning_exempt: bool
    suspended_manually: bool
    #: Set when the worker parked the account: no job bills or evaluates it until released.
    parked: Parked | None
    created_at: datetime


class UserCreate(Body):
    external_id: ExternalId
    email: Email | None = None


class UserOut(Struct, kw_only=True):
    id: str
    external_id: str
    account_id: str
    email: str | None
    status: str


class PriceOverrideIn(Body):
    """A price negotiated for one phase of the plan, in the bill-to account's currency."""

    phase: Literal["trial", "discount", "fixed_term", "evergreen"]
    fixed: Amount | None = None
    recurring: Amount | None = None


PriceOverrides = Annotated[list[PriceOverrideIn], Meta(max_length=4)]


class SubscriptionCreate(Body):
    plan: Code
    price_list: Code | None = None
    quantity: Annotated[int, Meta(ge=1, le=10_000_000)] = 1
    start_date: date | None = None
    entitlement_start: date | None = None
    billing_start: date | None = None
    start_at: datetime | None = None
    cycle_day: CycleDay | None = None
    base_subscription_id: str | None = None
    external_id: ExternalId | None = None
    #: Prices negotiated for the plan's phases, replacing the catalog's.
    price_overrides: PriceOverrides | None = None
    dry_run: bool = False


class SubscriptionOut(Struct, kw_only=True):
    id: str
    account_id: str
    base_subscription_id: str | None
    plan: str
    price_list: str
    quantity: int
    status: str
    entitlement_start: date
    billing_start: date
    entitlement_end: date | None
    billing_end: date | None
    phase: str | None
    pauses: list[dict[str, str | None]]
    #: The negotiated prices of the plan in force (empty: the catalog's).
    price_overrides: list[dict[str, str | None]]
    #: Billing held while the account was suspended for non-payment (days credited).
    billing_holds: list[dict[str, str | None]]
    pending_changes: list[dict[str, str]]


Policy = Literal["immediate", "end_of_term"]


class InvoiceItemOut(Struct, kw_only=True):
    kind: str
    subscription_id: str | None
    plan: str | None
    phase: str | None
    start_date: date
    end_date: date
    quantity: int
    amount: str
    linked_item_id: str | None
    id: str | None


class InvoicePreview(Struct, kw_only=True):
    invoice_date: date
    currency: str
    items: list[InvoiceItemOut]
    total: str
    credit_after: str


class ChangeOut(Struct, kw_only=True):
    """A change to a subscription and the invoice it produced (or would, on a dry run)."""

    subscription: SubscriptionOut
    invoice: InvoicePreview | None
    dry_run: bool


class InvoiceCreate(Body):
    target_date: TargetDate | None = None
    dry_run: bool = False


class PaymentCreate(Body):
    amount: Amount
    currency: Currency
    method: Literal["manual", "check", "wire", "cash", "other"] = "manual"
    reference: Annotated[str, Meta(max_length=200)] | None = None
    #: The open invoices this payment pays first, in order (a wire for one invoice); what is
    #: left pays the others oldest first, then becomes credit.
    invoices: Annotated[
        list[Annotated[str, Meta(max_length=40)]],
        Meta(
            max_length=50,
            description="Open invoices this payment pays first, in order; "
            "the rest pays the others oldest first",
        ),
    ] = msgspec.field(default_factory=list)


class PaymentRow(Struct, kw_only=True):
    id: str
    account_id: str
    amount: str
    currency: str
    method: str
    reference: str | None
    received_at: datetime
    refunded: str


class PaymentOut(PaymentRow, kw_only=True):
    #: The account as the payment left it.
    account: AccountOut


class PaymentList(Struct, kw_only=True):
    data: list[PaymentOut]


class RefundCreate(Body):
    amount: Amount
    reason: Annotated[str, Meta(max_length=200)] | None = None
    #: True: the invoices the payment paid stay paid, a credit note takes the refunded part
    #: off; false: they re-open for it, and collection and dunning take them up again.
    adjust: Annotated[
        bool,
        Meta(
            description="Refund with a credit note (the invoice stays paid); false "
            "re-opens what the payment paid"
        ),
    ] = True


class RefundOut(Struct, kw_only=True):
    id: str
    payment_id: str
    amount: str
    reason: str | None
    created_at: datetime
    #: Whether a credit note took the refunded part off (else the invoices re-opened).
    adjusted: bool
    payment: PaymentOut


class AttemptOut(Struct, kw_only=True):
    id: str
    payment_method_id: str
    idempotency_key: str
    amount: str
    currency: str
    status: str
    reason: str | None
    hard: bool
    created_at: datetime
    updated_at: datetime


class AttemptList(Struct, kw_only=True):
    data: list[AttemptOut]


class ProviderEventData(Struct, kw_only=True):
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)]
    amount: Amount | None = None
    currency: Currency | None = None
    reason: Annotated[str, Meta(max_length=64)] | None = None
    hard: bool = False
    reference: Annotated[str, Meta(max_length=200)] | None = None


class ProviderEvent(Struct, kw_only=True):
    """A payment provider's webhook: unknown fields are allowed (providers add them)."""

    id: Annotated[str, Meta(min_length=1, max_length=150)]
    type: Literal["charge.succeeded", "charge.failed", "charge.refunded"]
    data: ProviderEventData


class ProviderEventAck(Struct, kw_only=True):
    received: bool
    duplicate: bool
    applied: bool


Days = Annotated[int, Meta(ge=0, le=3650)]


class InvoiceOut(Struct, kw_only=True):
    id: str
    #: Sequential per tenant from issue (``INV-000042``); null for a draft.
    number: str | None
    account_id: str
    invoice_date: date
    issued_at: datetime
    due_at: Annotated[
        datetime,
        Meta(description="The start of the due date (invoice date + net terms) in the account's "
             "time zone: dunning counts whole days from it, so an invoice due on receipt (net 0) "
             "issued during its day is due from that day's start, before its issued_at"),
    ]  # fmt: skip
    currency: str
    total: str
    paid: str
    balance: str
    status: str
    items: list[InvoiceItemOut]


class InvoiceList(Struct, kw_only=True):
    data: list[InvoiceOut]


class UsageDay(Struct, kw_only=True):
    day: str
    logins: int
    active_users: int
    peak_sessions: int


class UsageList(Struct, kw_only=True):
    data: list[UsageDay]


class DunningOut(Struct, kw_only=True):
    account_id: str
    standing: str
    reason: str
    policy: str
    days_past_due: int
    oldest_due_at: datetime | None
    next_change_at: datetime | None
    retry: int | None
    exempt: bool
    suspended_manually: bool
    hard_declined: bool
    exempt_subscriptions: list[str]
