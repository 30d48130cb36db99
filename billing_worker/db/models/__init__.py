"""SQLAlchemy models, by what they hold. Money is integer minor units plus a CHAR(3)
currency code; datetimes are UTC on every backend."""

from billing_worker.db.models.accounts import (
    Account,
    StandingChange,
    Subscription,
    UsageDaily,
    UsageRecord,
    User,
)
from billing_worker.db.models.audit import AuditEntry
from billing_worker.db.models.base import NAMING, Base, UTCDateTime
from billing_worker.db.models.invoices import (
    Invoice,
    InvoiceEvent,
    InvoiceItem,
    InvoiceNumber,
    InvoiceRun,
)
from billing_worker.db.models.messages import Delivery, Event, Message, WebhookEndpoint
from billing_worker.db.models.payments import (
    Payment,
    PaymentAllocation,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    Refund,
)
from billing_worker.db.models.tenancy import (
    WITH_SECRETS,
    ApiKey,
    CatalogVersion,
    ConsoleSession,
    IdempotentRequest,
    OutboxEntry,
    Tenant,
)

__all__ = [
    "NAMING",
    "WITH_SECRETS",
    "Account",
    "ApiKey",
    "AuditEntry",
    "Base",
    "CatalogVersion",
    "ConsoleSession",
    "Delivery",
    "Event",
    "IdempotentRequest",
    "Invoice",
    "InvoiceEvent",
    "InvoiceItem",
    "InvoiceNumber",
    "InvoiceRun",
    "Message",
    "OutboxEntry",
    "Payment",
    "PaymentAllocation",
    "PaymentAttempt",
    "PaymentEvent",
    "PaymentMethod",
    "Refund",
    "StandingChange",
    "Subscription",
    "Tenant",
    "UTCDateTime",
    "UsageDaily",
    "UsageRecord",
    "User",
    "WebhookEndpoint",
]
