"""Protect an application with Tollgate sessions, the way the reverse-proxy endpoint does.

Each request's session token (the session cookie, or ``Authorization: Bearer``) is checked
with the gateway for that request's method and path: 200 lets it through with the user's
identity, 401 (no valid session) and 403 (denied: suspended, read-only for an unsafe
method, ...) are answered here and the application never sees the request. A gateway that
cannot be reached is a 403 with reason ``unavailable`` (closed), never an allow.

The check is bound to the gateway key's tenant (the client sends the key), and the
middleware verifies it again: an allow whose ``X-Tollgate-Tenant`` is not the key's own
tenant (a gateway too old to bind, a proxy in between that rewrote it) is a 403 with reason
``wrong_tenant``, so an application never accepts another tenant's sessions or user ids.

- ASGI (Starlette, FastAPI, ...): ``app = TollgateASGI(app, AsyncGateway(...))``; the
  identity is in ``scope["state"]["tollgate"]`` (``request.state.tollgate`` in Starlette).
- WSGI (Flask, Django, ...): ``app.wsgi_app = TollgateWSGI(app.wsgi_app, Gateway(...))``;
  the identity is in ``environ["tollgate"]``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

import httpx

from tollgate_client.gateway import AsyncGateway, Gateway
from tollgate_client.results import Check, TollgateError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

COOKIE = "tollgate_session"


def _token(cookie_header: str | None, authorization: str | None, cookie: str) -> str | None:
    if cookie_header:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # a malformed Cookie header is no session
            jar = SimpleCookie()
        if cookie in jar:
            return jar[cookie].value
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def _refusal(check: Check) -> tuple[int, list[tuple[str, str]], bytes]:
    status = check.status if check.status in (401, 403) else 403
    reason = check.reason or ("no_session" if status == 401 else "denied")
    body = json.dumps({"status": status, "reason": reason}).encode()
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    if status == 401:
        headers.append(("www-authenticate", 'Bearer realm="tollgate"'))
    return status, headers, body


def _verified(check: Check, tenant: str) -> Check:
    """``check``, or a refusal when it allowed a session of another tenant than ``tenant``."""
    if check.allowed and check.identity.get("x-tollgate-tenant") != tenant:
        return Check(403, "wrong_tenant")
    return check


def _identity(check: Check) -> dict[str, Any]:
    identity: dict[str, Any] = {k.removeprefix("x-tollgate-"): v for k, v in check.identity.items()}
    identity["features"] = [f for f in identity.get("features", "").split(",") if f]
    identity["read_only"] = check.read_only
    return identity


class TollgateASGI:
    """ASGI middleware: only requests with an allowed session reach ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        gateway: AsyncGateway,
        *,
        cookie: str = COOKIE,
        protect: Callable[[str], bool] = lambda path: True,
    ) -> None:
        self._app, self._gateway, self._cookie, self._protect = app, gateway, cookie, protect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._protect(scope["path"]):
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}  # fmt: skip
        token = _token(headers.get("cookie"), headers.get("authorization"), self._cookie)
        check = Check(401)
        if token:
            try:
                check = await self._gateway.check(token, scope["method"], scope["path"])
                check = _verified(check, await self._gateway.tenant())
            except (httpx.TransportError, TollgateError):
                check = Check(403, "unavailable")
        if not check.allowed:
            status, response_headers, body = _refusal(check)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in response_headers],
                }
            )
            await send({"type": "http.response.body", "body": body})  # fmt: skip
            return
        scope.setdefault("state", {})["tollgate"] = _identity(check)
        await self._app(scope, receive, send)


class TollgateWSGI:
    """WSGI middleware: only requests with an allowed session reach ``app``."""

    def __init__(
        self,
        app: WSGIApp,
        gateway: Gateway,
        *,
        cookie: str = COOKIE,
        protect: Callable[[str], bool] = lambda path: True,
    ) -> None:
        self._app, self._gateway, self._cookie, self._protect = app, gateway, cookie, protect

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        if not self._protect(path):
            return self._app(environ, start_response)
        token = _token(environ.get("HTTP_COOKIE"), environ.get("HTTP_AUTHORIZATION"),
                       self._cookie)  # fmt: skip
        check = Check(401)
        if token:
            try:
                check = self._gateway.check(token, environ.get("REQUEST_METHOD", "GET"), path)
                check = _verified(check, self._gateway.tenant())
            except (httpx.TransportError, TollgateError):
                check = Check(403, "unavailable")
        if not check.allowed:
            status, headers, body = _refusal(check)
            phrase = "Unauthorized" if status == 401 else "Forbidden"
            start_response(f"{status} {phrase}", headers)
            return [body]
        environ["tollgate"] = _identity(check)
        return self._app(environ, start_response)
