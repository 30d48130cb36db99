"""Typed application keys of the gateway, declared in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.decisions.gate import Gate
from gateway.decisions.verified import VerifiedSecrets
from gateway.logins.sessions import SessionStore
from gateway.logins.writeback import WriteBack
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.view.store import EntitlementStore
from shared.clock import Clock

SETTINGS = web.AppKey("settings", GatewaySettings)
STORE = web.AppKey("store", EntitlementStore)
SESSIONS = web.AppKey("sessions", SessionStore)
WRITEBACK = web.AppKey("writeback", WriteBack)
METRICS = web.AppKey("metrics", GatewayMetrics)
VERIFIED = web.AppKey("verified_secrets", VerifiedSecrets)
CLOCK = web.AppKey[Clock]("clock")
GATE = web.AppKey("gate", Gate)
