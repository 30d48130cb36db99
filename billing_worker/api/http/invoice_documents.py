"""An invoice as a document a customer reads: its number, the tenant's name, the customer's
name and address, each line with its period, and the amounts written the currency's own
way (``$1,204.50``, ``¥4,900``). One template renders the console's page and the PDF
(WeasyPrint, with Debian's fonts and Pango)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import aiohttp_jinja2
from aiohttp import web
from babel.numbers import format_currency

from billing_worker.api.http.views import in_invoice_order
from billing_worker.db.models import InvoiceItem
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.services.errors import Unavailable
from billing_worker.services.invoices import InvoiceParts
from shared.money import Money

#: How amounts are written: the currency's symbol and its own number of decimals.
LOCALE = "en_US"
TEMPLATE = "invoice_document.html"

_KINDS = {
    "recurring": "Subscription",
    "usage": "Usage",
    "fixed": "One-time fee",
    "repair": "Adjustment for an earlier period",
    "credit_applied": "Account credit applied",
    "credit_generated": "Credit to the account",
    "credit": "Credit",
    "charge": "Charge",
    "adjustment": "Adjustment",
    "parent_summary": "Invoice of a member account",
}


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    period: str
    quantity: int | None
    amount: str


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    number: str | None
    invoice_id: str
    status: str
    seller: str
    customer: str
    address: list[str]
    customer_email: str | None
    invoice_date: date
    due_date: date
    lines: list[Line]
    total: str
    paid: str
    balance: str


def written(minor: int, currency: str) -> str:
    """An amount the currency's own way: ``$1,204.50``, ``€49.00``, ``¥4,900``."""
    amount: Decimal = Money.from_minor(minor, currency).amount
    return str(format_currency(amount, currency, locale=LOCALE))


def _line(item: InvoiceItem) -> Line:
    kind = _KINDS.get(item.kind, item.kind.replace("_", " ").capitalize())
    what = f"{kind}: {item.plan}" if item.plan else kind
    if item.phase and item.phase != "evergreen":
        what += f" ({item.phase})"
    period = ""
    if item.start_date and item.end_date and item.end_date > item.start_date:
        last = item.end_date - timedelta(days=1)  # a period's end is the day after its last
        period = f"{item.start_date:%b %-d, %Y}\u2009\u2013\u2009{last:%b %-d, %Y}"
    elif item.start_date:
        period = f"{item.start_date:%b %-d, %Y}"
    return Line(what, period, item.quantity, written(item.amount_minor, item.currency))


def invoice_document(parts: InvoiceParts) -> InvoiceDocument:
    """The invoice as its customer reads it."""
    invoice, items, tenant, account = parts.invoice, parts.items, parts.tenant, parts.account
    owed = invoice.total_minor - invoice.paid_minor if invoice.status == InvoiceStatus.OPEN else 0
    return InvoiceDocument(
        number=display_number(invoice.number),
        invoice_id=invoice.id,
        status=invoice.status,
        seller=tenant.name,
        customer=account.name,
        address=(account.billing_address or "").splitlines(),
        customer_email=account.email,
        invoice_date=invoice.invoice_date,
        due_date=invoice.due_at.date(),
        lines=[_line(item) for item in in_invoice_order(items)],
        total=written(invoice.total_minor, invoice.currency),
        paid=written(invoice.paid_minor, invoice.currency),
        balance=written(owed, invoice.currency),
    )


def render_html(app: web.Application, document: InvoiceDocument) -> str:
    template = aiohttp_jinja2.get_env(app).get_template(TEMPLATE)
    return template.render(invoice=document, standalone=True)


async def render_pdf(app: web.Application, document: InvoiceDocument) -> bytes:
    """The PDF, laid out off the event loop (a page takes WeasyPrint tens of ms).

    WeasyPrint is imported here, not with the module: it needs Pango, and a server without
    it still starts and answers everything else; only its PDFs are refused, in words.
    """
    try:
        import weasyprint
    except OSError as exc:
        raise Unavailable(
            "PDFs need Pango on this server (Debian: apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0 fonts-dejavu-core): {exc}"
        ) from exc
    html = render_html(app, document)
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(None, lambda: weasyprint.HTML(string=html).write_pdf())
    assert pdf is not None
    return bytes(pdf)
