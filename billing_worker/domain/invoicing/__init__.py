"""What to invoice: the items a subscription's terms justify, minus what was billed.

Invoicing compares two lists. *Proposals* are every charge the subscriptions' terms justify
up to the target date (recurring periods, fixed fees, usage). *Existing* items are what
issued invoices already hold. The difference is the new invoice:

- a proposal no existing item covers is a new charge (for a period partly covered, only
  the uncovered days are charged);
- days an existing recurring item paid for that no proposal justifies any more (a
  cancellation, a pause, a quantity or plan change) get a *repair*: a credit worth what the
  item was billed minus the prorated value of the days it still covers, so a repair plus
  what remains billed is exactly what was billed;
- everything else is already billed, which is why running it twice bills nothing.

Issued invoices are never edited; a credit larger than the new charges becomes account
credit, and account credit pays later charges.

The parts: ``items`` (what a line is), ``proposing``, ``repairs`` (reconciliation) and
``assembly`` (invoices from items); this package exports what callers use.
"""

from billing_worker.domain.invoicing.assembly import (
    Draft,
    assemble,
    balance,
    by_billing_day,
    invoice_total,
    next_items,
)
from billing_worker.domain.invoicing.items import Billing, Item, ItemKind, Proposal, UsageRecord
from billing_worker.domain.invoicing.proposing import propose, rate_usage
from billing_worker.domain.invoicing.repairs import reconcile

__all__ = [
    "Billing",
    "Draft",
    "Item",
    "ItemKind",
    "Proposal",
    "UsageRecord",
    "assemble",
    "balance",
    "by_billing_day",
    "invoice_total",
    "next_items",
    "propose",
    "rate_usage",
    "reconcile",
]
