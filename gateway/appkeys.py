"""Typed application keys of the gateway, declared in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.settings import GatewaySettings
from gateway.store import EntitlementStore
from shared.clock import Clock

SETTINGS = web.AppKey("settings", GatewaySettings)
STORE = web.AppKey("store", EntitlementStore)
CLOCK = web.AppKey[Clock]("clock")
