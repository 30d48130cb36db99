"""The management API as an aiohttp application: its middlewares, routes and console.

It builds the HTTP edge only. The process that serves it (``billing_worker.worker``) gives
it its resources -- the database, Redis, the clock, the payment providers -- and, in a
worker, runs the billing jobs beside it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from billing_worker.api import console
from billing_worker.api.billing import (  # noqa: F401  (registers routes)
    adjustments,
    catalog,
    invoice_runs,
    listings,
    payment_methods,
    payments,
    stripe_webhooks,
    subscription_changes,
    subscriptions,
)
from billing_worker.api.customers import (  # noqa: F401  (registers routes)
    accounts,
    directory,
    dunning,
    live_sessions,
    parking,
)
from billing_worker.api.http.appkeys import (
    INVOICE_RUNS_WAKE,
    OUTBOX_WAKE,
    PAYMENTS_WAKE,
    REFUND_TURNS,
    SETTINGS,
)
from billing_worker.api.http.auth import auth_middleware, request_id_middleware
from billing_worker.api.http.errors import problem_middleware
from billing_worker.api.http.idempotency import idempotency_middleware
from billing_worker.api.http.limits import billing_budget, time_limit
from billing_worker.api.http.page_headers import add_page_headers, forwarded_scheme
from billing_worker.api.http.routes import router
from billing_worker.api.tenancy import (  # noqa: F401  (registers routes)
    audit,
    keys,
    meta,
    tenants,
    testing,
    webhooks,
)
from billing_worker.invoicing.budget import Budget
from billing_worker.runtime.turns import Turns
from billing_worker.settings import WorkerSettings


def create_api(settings: WorkerSettings) -> web.Application:
    """The management API's application, without its resources (``worker.create_app``)."""
    app = web.Application(
        middlewares=[
            forwarded_scheme(settings.api_trusted_proxies),
            request_id_middleware,
            problem_middleware,
            time_limit(settings.request_seconds),  # the key's check waits within it too
            auth_middleware,
            idempotency_middleware,
            billing_budget(
                Budget(settings.max_invoices_per_request, settings.max_items_per_request)
            ),
        ]
    )
    app[SETTINGS] = settings
    app.on_response_prepare.append(add_page_headers)
    # what handlers wake (the jobs beside them listen) and the refunds' turns
    app[OUTBOX_WAKE] = asyncio.Event()
    app[INVOICE_RUNS_WAKE] = asyncio.Event()
    app[PAYMENTS_WAKE] = asyncio.Event()
    app[REFUND_TURNS] = Turns()
    router.install(app)
    console.install(app)
    return app
