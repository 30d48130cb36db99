"""The reverse-proxy contract: ``GET``/``HEAD /v1/auth`` and Envoy's ext_authz (HTTP).

Answers only 200 (allow, with identity headers for the upstream), 401 (no valid
session) or 403 (denied) -- never a redirect or a 5xx, which nginx's ``auth_request``
would turn into a 500. Every 401 is the same, whatever the cause, so a caller learns
nothing about which users or sessions exist.

The session token comes from the session cookie or ``Authorization: Bearer``. The
original method (needed to hold a read-only account to safe methods) comes from
``X-Forwarded-Method`` (Traefik, Caddy) or ``X-Original-Method`` (nginx), trusted only
from the configured proxy addresses; Envoy sends the original method and path itself,
below a path prefix.

A proxy in front of one tenant's application scopes the check to that tenant with
``?tenant=<id>`` or an ``X-Tollgate-Tenant`` header; scoping can only narrow access.
"""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import quote

from aiohttp import web

from gateway.appkeys import CLOCK, METRICS, SETTINGS, STORE, VERIFIED, WRITEBACK
from gateway.decisions.decision import Decision, decide, fail_open, limit_method
from gateway.decisions.verified import VerifiedSecrets
from gateway.logins.sessions import SessionRef, parse_token
from gateway.settings import GatewaySettings
from gateway.view.store import Reader, StoreUnavailable, read_record, read_session, read_user
from shared.credentials import bearer_token
from shared.keys import account_key

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tollgate"', "Cache-Control": "no-store"}


def _header_value(text: str) -> str:
    """Identity values are arbitrary ids: keep headers ASCII and single-line."""
    return text if text.isascii() and text.isprintable() else quote(text, safe="@._-+!~*'()")


class TrustedProxies:
    def __init__(self, settings: GatewaySettings) -> None:
        self._networks = settings.trusted_proxies
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, remote: str | None) -> bool:
        if remote is None:
            return False
        verdict = self._verdicts.get(remote)
        if verdict is None:
            try:
                address = ipaddress.ip_address(remote)
                verdict = any(address in network for network in self._networks)
            except ValueError:
                verdict = False
            if len(self._verdicts) < 10_000:
                self._verdicts[remote] = verdict
        return verdict


TRUSTED = web.AppKey("trusted_proxies", TrustedProxies)


def _token(request: web.Request, cookie_name: str) -> str | None:
    return request.cookies.get(cookie_name) or bearer_token(request.headers.get("Authorization"))


def _original_method(request: web.Request) -> str:
    if request.remote in request.app[TRUSTED]:
        headers = request.headers
        forwarded = headers.get("X-Forwarded-Method") or headers.get("X-Original-Method")
        if forwarded:
            return forwarded
    return request.method


async def _resolve(
    reader: Reader, verified: VerifiedSecrets, ref: SessionRef, secret: str, now: float
) -> tuple[str, Decision] | None:
    """(user id, decision), or None when there is no such live session."""
    reader.prefetch(ref.key, account_key(ref.tenant_id, ref.account_id))
    session = await read_session(reader, ref)
    if session is None or not verified.matches(secret, session):
        return None
    user = await read_user(reader, ref.tenant_id, session.user_id)
    record = await read_record(reader, ref.tenant_id, ref.account_id)
    return session.user_id, decide(user, record, now)


async def _decide(request: web.Request, method: str, endpoint: str) -> web.Response:
    started = time.perf_counter()
    app = request.app
    token = _token(request, app[SETTINGS].session_cookie)
    parsed = parse_token(token) if token else None
    if parsed is None:
        return _unauthorized(request, endpoint, started)
    ref, secret = parsed
    scope = request.query.get("tenant") or request.headers.get("X-Tollgate-Tenant")
    if scope and scope != ref.tenant_id:
        # The proxy protects one tenant's application: another tenant's session is, to it,
        # no session at all.
        return _unauthorized(request, endpoint, started)
    store, now = app[STORE], app[CLOCK].timestamp()
    stale_age = 0.0
    try:
        resolved = await _resolve(store.live, app[VERIFIED], ref, secret, now)
    except StoreUnavailable:
        reader = store.last_known()
        resolved = await _resolve(reader, app[VERIFIED], ref, secret, now)
        stale_age = reader.max_age
        if resolved is not None:
            resolved = resolved[0], fail_open(resolved[1], stale_age)
        elif stale_age == float("inf"):
            # A session this gateway never saw cannot be checked now: deny, but do not
            # send the user to log in again (that cannot work either until Redis is back).
            return _forbidden(request, endpoint, "unavailable", started)
    if resolved is None:
        return _unauthorized(request, endpoint, started)
    user_id, decision = resolved
    decision = limit_method(decision, method)
    record = decision.record
    if not decision.allow or record is None:
        app[WRITEBACK].decided(ref.tenant_id, "deny", decision.reason, now)
        return _forbidden(request, endpoint, decision.reason, started)
    if not stale_age:
        app[WRITEBACK].touched(ref, record.session_idle_seconds, now)
    app[WRITEBACK].active(ref.tenant_id, ref.account_id, user_id, now)
    headers = {
        "X-Tollgate-Tenant": ref.tenant_id,
        "X-Tollgate-Account": ref.account_id,
        "X-Tollgate-User": _header_value(user_id),
        "X-Tollgate-Session": ref.public_id,
        "X-Tollgate-Standing": record.standing.value,
        "X-Tollgate-Plan": _header_value(record.plan or ""),
        "X-Tollgate-Features": ",".join(_header_value(f) for f in record.features),
        "X-Tollgate-Read-Only": "true" if record.read_only else "false",
        "Cache-Control": "no-store",
    }
    if stale_age:
        headers["X-Tollgate-Stale"] = f"{stale_age:.1f}"
    app[METRICS].decided(endpoint, "allow", decision.reason, time.perf_counter() - started)
    app[WRITEBACK].decided(ref.tenant_id, "allow", decision.reason, now)
    return web.Response(status=200, headers=headers)


def _forbidden(request: web.Request, endpoint: str, reason: str, started: float) -> web.Response:
    request.app[METRICS].decided(endpoint, "deny", reason, time.perf_counter() - started)
    return web.Response(
        status=403, headers={"X-Tollgate-Reason": reason, "Cache-Control": "no-store"}
    )


def _unauthorized(request: web.Request, endpoint: str, started: float) -> web.Response:
    request.app[METRICS].decided(
        endpoint, "unauthorized", "no_session", time.perf_counter() - started
    )
    return web.Response(status=401, headers=_UNAUTHORIZED_HEADERS)


async def auth(request: web.Request) -> web.Response:
    """nginx ``auth_request``, Caddy ``forward_auth``, Traefik ForwardAuth."""
    return await _decide(request, _original_method(request), "auth")


async def envoy(request: web.Request) -> web.Response:
    """Envoy ext_authz (HTTP): the original method and path arrive as they are."""
    return await _decide(request, request.method, "envoy")
