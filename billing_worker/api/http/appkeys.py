"""Typed application keys of the management API, declared in one place."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.payments.book import ProviderBook
from billing_worker.runtime.turns import Turns
from billing_worker.settings import WorkerSettings
from shared.clock import Clock, RedisTestClock
from shared.redis_connection import RedisClient

SETTINGS = web.AppKey("settings", WorkerSettings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
REDIS = web.AppKey[RedisClient]("redis")
CLOCK = web.AppKey[Clock]("clock")
TEST_CLOCK = web.AppKey[RedisTestClock | None]("test_clock")
#: Set after every commit that staged outbox rows, so the publisher drains at once.
OUTBOX_WAKE = web.AppKey("outbox_wake", asyncio.Event)
#: Set when a new invoice run is created, so the worker starts it at once.
INVOICE_RUNS_WAKE = web.AppKey("invoice_runs_wake", asyncio.Event)
#: The payment providers each tenant's tokens may belong to (the sandbox, and Stripe).
PROVIDERS = web.AppKey("providers", ProviderBook)
#: Set after a payment event is queued, so the payment queue applies it at once.
PAYMENTS_WAKE = web.AppKey("payments_wake", asyncio.Event)
#: Refunds of one payment take turns (their provider call is outside any transaction).
REFUND_TURNS = web.AppKey("refund_turns", Turns)
#: The request's id (``auth.request_id_middleware``).
REQUEST_ID = web.RequestKey("request_id", str)
