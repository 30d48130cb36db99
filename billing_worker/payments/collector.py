"""The collector job: charges what is due, then settles what is unsettled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.payments.book import ProviderBook
from billing_worker.payments.collection import collect_due
from billing_worker.payments.providers import PaymentProvider
from billing_worker.payments.reconciliation import reconcile
from billing_worker.runtime.loop import repeat
from shared.clock import Clock


class Collector:
    """The worker job: charges what is due, then reconciles what is unsettled."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: Sequence[PaymentProvider] | ProviderBook,
        clock: Clock,
        *,
        interval: float,
        reconcile_after: timedelta,
        provider_timeout: float,
        on_change: Callable[[], None],
    ) -> None:
        self._timeout = provider_timeout
        self._sessions = sessions
        self._providers = providers
        self._clock = clock
        self._interval = interval
        self._after = reconcile_after
        self._on_change = on_change

    async def run(self, stop: asyncio.Event) -> None:
        await repeat("collector", self._step, stop, interval=self._interval,
                     on_change=self._on_change)  # fmt: skip

    async def _step(self) -> int:
        charged = await collect_due(
            self._sessions, self._providers, self._clock, provider_timeout=self._timeout
        )
        settled = await reconcile(
            self._sessions, self._providers, self._clock, after=self._after,
            provider_timeout=self._timeout,
        )  # fmt: skip
        return charged + settled
