"""Signing in and out of the console, and the operator's tenant picker.

The sign-in form is protected against login CSRF by a double-submit token: the page sets a
short-lived cookie and puts the same value in the form; a post from elsewhere has no way to
know it. Every other form carries the session's own CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from billing_worker.api.http.appkeys import SESSIONS, SETTINGS
from billing_worker.api.http.console_sessions import (
    COOKIE,
    close_session,
    csrf_ok,
    session_of,
    set_cookie,
)
from billing_worker.db.models import ConsoleSession, Tenant
from billing_worker.services import reports
from billing_worker.services.console_sessions import open_session, signer_of

SIGN_IN = "/console/sign-in"
_FORM_COOKIE = "tollgate_console_form"
routes = web.RouteTableDef()


def _now() -> datetime:
    return datetime.now(UTC)  # sessions last in real time, whatever a test clock says


async def signed_in(request: web.Request, *, tenant: bool = True) -> ConsoleSession:
    """The request's console session; without one the browser is sent to sign in (and an
    operator who has not picked a tenant, to the picker)."""
    async with request.app[SESSIONS]() as session:
        found = await session_of(session, request, _now())
    if found is None:
        raise web.HTTPSeeOther(SIGN_IN)
    if tenant and found.tenant_id is None:
        raise web.HTTPSeeOther("/console/tenants")
    return found


async def checked_form(request: web.Request, found: ConsoleSession) -> Any:
    """A posted form of the session's own pages, or 403 without its CSRF token."""
    form = await request.post()
    given = form.get("csrf")
    if not csrf_ok(found, given if isinstance(given, str) else None):
        raise web.HTTPForbidden(text="This form has expired: reload the page and try again.")
    return form


@routes.get("/console")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/overview")


@routes.get(SIGN_IN)
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    return _sign_in_form(request, error=None)


def _sign_in_form(request: web.Request, error: str | None) -> web.StreamResponse:
    token = secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "sign_in.html", request, {"form_token": token, "error": error},
        status=401 if error else 200,
    )  # fmt: skip
    response.set_cookie(
        _FORM_COOKIE, token, path=SIGN_IN, httponly=True, samesite="Strict",
        secure=request.secure, max_age=3600,
    )  # fmt: skip
    return response


@routes.post(SIGN_IN)
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    given, expected = form.get("form_token"), request.cookies.get(_FORM_COOKIE)
    if not isinstance(given, str) or not expected or not hmac.compare_digest(given, expected):
        raise web.HTTPForbidden(text="This form has expired: reload the page and try again.")
    key = form.get("key")
    operator_key = request.app[SETTINGS].operator_key.reveal()
    async with request.app[SESSIONS]() as session, session.begin():
        signer = (
            await signer_of(session, key.strip(), operator_key) if isinstance(key, str) else None
        )
        if signer is None:
            # one answer for every refused key: no oracle for key ids
            return _sign_in_form(request, "That key was not accepted: use a tenant admin key.")
        secret = await open_session(session, signer, _now())
    response = web.HTTPSeeOther("/console/tenants" if signer.operator else "/console/overview")
    set_cookie(response, request, secret)
    response.del_cookie(_FORM_COOKIE, path=SIGN_IN)
    raise response


@routes.post("/console/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request, tenant=False)
    await checked_form(request, found)
    async with request.app[SESSIONS]() as session, session.begin():
        await close_session(session, request)
    response = web.HTTPSeeOther(SIGN_IN)
    response.del_cookie(COOKIE, path="/")
    raise response


@routes.get("/console/tenants")
async def tenants_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request, tenant=False)
    if found.key_id is not None:  # a tenant's key sees its own tenant only
        raise web.HTTPSeeOther("/console/overview")
    async with request.app[SESSIONS]() as session:
        tenants = await reports.tenants(session)
    return aiohttp_jinja2.render_template(
        "tenants.html", request, {"session": found, "tenants": tenants, "tenant": None}
    )


@routes.post("/console/tenants")
async def pick_tenant(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request, tenant=False)
    form = await checked_form(request, found)
    if found.key_id is not None:
        raise web.HTTPForbidden(text="Only the operator picks a tenant.")
    async with request.app[SESSIONS]() as session, session.begin():
        picked = await session.get(Tenant, str(form.get("tenant_id", "")))
        row = await session.get(ConsoleSession, found.secret_hash, with_for_update=True)
        if picked is None or row is None:
            raise web.HTTPNotFound(text="No such tenant.")
        row.tenant_id = picked.id
    raise web.HTTPSeeOther("/console/overview")
