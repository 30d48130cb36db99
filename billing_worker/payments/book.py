"""Which payment providers a tenant's tokens may belong to: the built-in sandbox, and the
tenant's own Stripe account once the tenant has given its secret key."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Tenant
from billing_worker.payments.providers import PaymentProvider
from billing_worker.payments.stripe_provider import StripeProvider

log = logging.getLogger(__name__)

#: A key given as ``env:NAME`` is read from the worker's environment when used, so the
#: key itself need never be sent to the API or stored.
ENV_PREFIX = "env:"


class ProviderBook:
    def __init__(
        self,
        fixed: Sequence[PaymentProvider],
        *,
        stripe_api_base: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.fixed = tuple(fixed)
        self._stripe_base = stripe_api_base
        self._environ = environ
        self._http: stripe.HTTPClient | None = None

    def resolve(self, stored: str) -> str | None:
        """A stored secret, or the value of the environment variable an ``env:NAME`` names."""
        if not stored.startswith(ENV_PREFIX):
            return stored
        name = stored.removeprefix(ENV_PREFIX)
        value = self._environ.get(name)
        if not value:
            log.warning("stripe.key_missing: the environment variable %s is not set", name)
        return value or None

    async def of(self, session: AsyncSession, tenant_id: str) -> tuple[PaymentProvider, ...]:
        """The tenant's providers."""
        stored = await session.scalar(
            select(Tenant.stripe_secret_key).where(Tenant.id == tenant_id)
        )
        key = self.resolve(stored) if stored else None
        if key is None:
            return self.fixed
        if self._http is None:  # one connection pool for every tenant's Stripe calls
            self._http = stripe.AIOHTTPClient()
        return (*self.fixed, StripeProvider(key, self._http, api_base=self._stripe_base))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]


def book_of(providers: Sequence[PaymentProvider] | ProviderBook) -> ProviderBook:
    """A book from a plain list of providers (the same for every tenant), as tests give."""
    return providers if isinstance(providers, ProviderBook) else ProviderBook(providers)
