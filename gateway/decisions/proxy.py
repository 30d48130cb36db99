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

A check is bound to one tenant, whose sessions alone it accepts: the tenant of the gateway
key the caller sends in ``X-Tollgate-Key`` (the Python client does), or the one named by
``?tenant=<id>`` or an ``X-Tollgate-Tenant`` header (the shipped proxy configurations do).
An unbound check is refused (403 ``tenant_required``): otherwise a proxy in front of one
tenant's application would let in any tenant's users. A proxy in front of several tenants'
applications opts in with ``TOLLGATE_PROXY_ANY_TENANT=true`` and routes by the answer's
``X-Tollgate-Tenant``.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from aiohttp import web

from gateway.appkeys import GATE
from gateway.decisions.callers import key_tenant
from gateway.decisions.decision import Decision, decide, fail_open, limit_method
from gateway.decisions.gate import Gate
from gateway.decisions.verified import VerifiedSecrets
from gateway.logins.sessions import parse_token
from gateway.view.refs import SessionRef
from gateway.view.store import (
    Reader,
    RecordingReader,
    StoreUnavailable,
    read_record,
    read_session,
    read_user,
)
from shared.credentials import bearer_token, split_token
from shared.entitlement import EntitlementRecord
from shared.keys import account_key, api_key_key

#: Allows are kept for requests whose Cookie and Authorization headers are this short.
KEPT_HEADERS = 1024
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tollgate"', "Cache-Control": "no-store"}


def _header_value(text: str) -> str:
    """Identity values are arbitrary ids: keep headers ASCII and single-line."""
    return text if text.isascii() and text.isprintable() else quote(text, safe="@._-+!~*'()")


def _token(request: web.BaseRequest, cookie_name: str) -> str | None:
    return request.cookies.get(cookie_name) or bearer_token(request.headers.get("Authorization"))


def _original_method(gate: Gate, request: web.BaseRequest) -> str:
    if request.remote in gate.trusted:
        headers = request.headers
        forwarded = headers.get("X-Forwarded-Method") or headers.get("X-Original-Method")
        if forwarded:
            return forwarded
    return request.method


async def _resolve(
    reader: Reader,
    verified: VerifiedSecrets,
    ref: SessionRef,
    secret: str,
    now: float,
    gateway_key: str | None,
) -> tuple[str, Decision] | None:
    """(user id, decision), or None when there is no such live session for the tenant of
    ``gateway_key`` (when one is sent)."""
    reader.prefetch(ref.key, account_key(ref.tenant_id, ref.account_id))
    if gateway_key is not None:
        key = split_token(gateway_key)
        if key is not None:  # read with the session and the record, in one round trip
            reader.prefetch(api_key_key(key[0]))
        if await key_tenant(reader, verified, gateway_key) != ref.tenant_id:
            return None
    session = await read_session(reader, ref)
    if session is None or not verified.matches(secret, session):
        return None
    user = await read_user(reader, ref.tenant_id, session.user_id)
    record = await read_record(reader, ref.tenant_id, ref.account_id)
    return session.user_id, decide(user, record, now)


async def _decide(gate: Gate, request: web.BaseRequest, method: str, endpoint: str) -> web.Response:
    started = time.perf_counter()
    sent = request.headers
    query = request.query.get("tenant") if request.query_string else None
    scope = query or sent.get("X-Tollgate-Tenant")
    gateway_key = sent.get("X-Tollgate-Key")
    if not (scope or gateway_key or gate.settings.proxy_any_tenant):
        return _forbidden(gate, endpoint, "tenant_required", started)
    # What the token is read from, as sent: a kept answer needs no cookie parsed.
    cookie, authorization = sent.get("Cookie"), sent.get("Authorization")
    key = (cookie, authorization, method, scope, gateway_key)
    now = gate.clock.timestamp()
    kept = gate.passes.get(key, now)
    if kept is not None:
        headers, ref = kept.payload
        return _allowed(gate, endpoint, ref, kept.user_id, kept.decision, headers, now, started)
    token = _token(request, gate.settings.session_cookie)
    parsed = parse_token(token) if token else None
    if parsed is None:
        return _unauthorized(gate, endpoint, started)
    ref, secret = parsed
    if scope and scope != ref.tenant_id:
        # The proxy protects one tenant's application: another tenant's session is, to it,
        # no session at all.
        return _unauthorized(gate, endpoint, started)
    live = RecordingReader(gate.store.live)
    stale_age = 0.0
    try:
        resolved = await _resolve(live, gate.verified, ref, secret, now, gateway_key)
    except StoreUnavailable:
        reader = gate.store.last_known()
        resolved = await _resolve(reader, gate.verified, ref, secret, now, gateway_key)
        stale_age = reader.max_age
        if resolved is not None:
            resolved = resolved[0], fail_open(resolved[1], stale_age)
        elif stale_age == float("inf"):
            # A session this gateway never saw cannot be checked now: deny, but do not
            # send the user to log in again (that cannot work either until Redis is back).
            return _forbidden(gate, endpoint, "unavailable", started)
    if resolved is None:
        return _unauthorized(gate, endpoint, started)
    user_id, decision = resolved
    decision = limit_method(decision, method)
    record = decision.record
    if not decision.allow or record is None:
        gate.writeback.decided(ref.tenant_id, "deny", decision.reason, now)
        return _forbidden(gate, endpoint, decision.reason, started)
    headers = _identity(ref, user_id, record)
    if stale_age:
        headers["X-Tollgate-Stale"] = f"{stale_age:.1f}"
    elif len(cookie or "") + len(authorization or "") + len(gateway_key or "") <= KEPT_HEADERS:
        payload = (headers, ref)
        gate.passes.keep(key, payload, decision, ref.tenant_id, user_id, live.reads, now)
    return _allowed(gate, endpoint, ref, user_id, decision, headers, now, started, stale_age)


def _identity(ref: SessionRef, user_id: str, record: EntitlementRecord) -> dict[str, str]:
    """The headers the upstream reads: who is calling, and what the account may do."""
    return {
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


def _allowed(
    gate: Gate,
    endpoint: str,
    ref: SessionRef,
    user_id: str,
    decision: Decision,
    headers: dict[str, str],
    now: float,
    started: float,
    stale_age: float = 0.0,
) -> web.Response:
    record = decision.record
    assert record is not None  # an allow always has its record
    if not stale_age:
        gate.writeback.touched(ref, record.session_idle_seconds, now)
    gate.writeback.active(ref.tenant_id, ref.account_id, user_id, now)
    gate.metrics.decided(endpoint, "allow", decision.reason, time.perf_counter() - started)
    gate.writeback.decided(ref.tenant_id, "allow", decision.reason, now)
    return web.Response(status=200, headers=headers)


def _forbidden(gate: Gate, endpoint: str, reason: str, started: float) -> web.Response:
    gate.metrics.decided(endpoint, "deny", reason, time.perf_counter() - started)
    return web.Response(
        status=403, headers={"X-Tollgate-Reason": reason, "Cache-Control": "no-store"}
    )


def _unauthorized(gate: Gate, endpoint: str, started: float) -> web.Response:
    gate.metrics.decided(endpoint, "unauthorized", "no_session", time.perf_counter() - started)
    return web.Response(status=401, headers=_UNAUTHORIZED_HEADERS)


async def check_session(gate: Gate, request: web.BaseRequest) -> web.Response:
    """nginx ``auth_request``, Caddy ``forward_auth``, Traefik ForwardAuth."""
    return await _decide(gate, request, _original_method(gate, request), "auth")


async def check_envoy(gate: Gate, request: web.BaseRequest) -> web.Response:
    """Envoy ext_authz (HTTP): the original method and path arrive as they are."""
    return await _decide(gate, request, request.method, "envoy")


async def auth(request: web.Request) -> web.Response:
    return await check_session(request.app[GATE], request)


async def envoy(request: web.Request) -> web.Response:
    return await check_envoy(request.app[GATE], request)
