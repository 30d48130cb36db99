"""``Idempotency-Key`` on the management API's POSTs (the semantics Stripe's API has).

The first request with a key runs; its answer is stored, and a retry with the same key and
the same request gets the stored answer (``Idempotent-Replayed: true``) without running
again. The same key with a different request is an error. Keys are per tenant, and kept
``WINDOW`` (24 hours, as Stripe keeps its keys): after that a key is forgotten, and a
request with it runs as new.

The key is claimed *inside the handler's own transaction*: the unit of work adds the claim
row to the first transaction that commits during the request, so the claim and the
request's effects commit together or not at all. A crash after that commit leaves a claim
without a stored answer; a retry then never runs twice: while the first may still be
running it gets 409, and once it cannot be (``LOST_AFTER``) a ``303 See Other`` to the
resource the request made or acted on (recorded with the claim), which clients follow to
read its state -- or, with none to point at, a 409 saying so. Two identical
requests racing both run their handler, but only one transaction can commit the claim:
the other rolls back whole and answers 409. A request refused before it changed anything
(a validation error) claims nothing, so it can be corrected and retried with the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.api.http.auth import TENANT
from billing_worker.db.models import IdempotentRequest
from billing_worker.db.unit_of_work import for_every_commit
from billing_worker.services import idempotent_requests
from billing_worker.services.errors import Conflict, InvalidRequest
from shared.problem import read_body

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
#: How long a key's answer is kept (and a key cannot be used for another request).
WINDOW = timedelta(hours=24)
#: A claim with no answer this long after it was made is no request in progress (none runs
#: this long): it committed and its answer was lost.
LOST_AFTER = timedelta(minutes=2)
#: Where an object a POST creates is read, by the path's last segment (the collection
#: posted to): the model it creates and the path of its resource.
_CREATES = {
    "accounts": ("account", "/v1/accounts/{}"),
    "subscriptions": ("subscription", "/v1/subscriptions/{}"),
    "invoices": ("invoice", "/v1/invoices/{}"),
    "charges": ("invoice", "/v1/invoices/{}"),
    "invoice-runs": ("invoice_run", "/v1/invoice-runs/{}"),
    "payments": ("payment", "/v1/payments/{}"),
}
#: Resources an action (``POST /v1/<collection>/<id>/<action>``) can be re-read at.
_READABLE = frozenset(("accounts", "subscriptions", "invoices", "invoice-runs", "payments"))


@dataclass(slots=True)
class _Claim:
    """The request's part in the commits it makes (``db.unit_of_work.for_every_commit``):
    the first one also commits the claim, and notes where what the request created is read,
    so an answer lost after that commit is replaced by a pointer to it."""

    row: IdempotentRequest
    committed: bool = False
    #: The created object's path, when the request creates one.
    resource: str | None = None

    def committing(self, session: Session) -> None:
        if not self.committed and session.in_transaction():
            session.add(self.row)
            self.committed = True  # assumed; the commit failing raises out of the handler
            _note_resource(self)

    def flushed(self, session: Session) -> None:
        if self.resource is not None:
            return
        segments = self.row.path.split("?")[0].rstrip("/").split("/")
        wanted = _CREATES.get(segments[-1])
        if wanted is None:
            return
        audit_name, where = wanted
        for obj in session.new:
            if getattr(obj, "__audit_name__", None) == audit_name:
                self.resource = where.format(obj.id)
                _note_resource(self)  # a later flush of the commit writes it
                return


def _note_resource(claim: _Claim) -> None:
    if claim.resource is not None:
        claim.row.response = orjson.dumps({"resource": claim.resource})


def _resource(stored: IdempotentRequest) -> str | None:
    """Where the state a lost answer would have shown is read: the object the request
    created, or the resource it acted on."""
    try:
        recorded = orjson.loads(stored.response) if stored.response else None
    except orjson.JSONDecodeError:
        recorded = None
    if isinstance(recorded, dict) and isinstance(recorded.get("resource"), str):
        return str(recorded["resource"])
    segments = stored.path.split("?")[0].rstrip("/").split("/")
    if len(segments) == 5 and segments[2] in _READABLE:  # ["", "v1", collection, id, action]
        return "/".join(segments[:4])
    return None


def _fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@web.middleware
async def idempotency_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return await handler(request)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest.field(HEADER, "1 to 255 printable characters")
    scope = request.get(TENANT, "operator")
    fingerprint = _fingerprint(request.method, request.path_qs, await read_body(request))
    now = datetime.now(UTC)  # retries happen in real time, whatever a test clock says
    sessions = request.app[SESSIONS]
    stored = await idempotent_requests.find(sessions, scope, key)
    if stored is not None and stored.created_at > now - WINDOW:
        return _replay(stored, fingerprint, now)
    if stored is not None:  # out of its window: forgotten, and the key is free again
        await idempotent_requests.forget(sessions, scope, key, now - WINDOW)
    claim = _Claim(
        IdempotentRequest(
            tenant_id=scope,
            key=key,
            method=request.method,
            path=request.path_qs[:500],
            body_sha256=fingerprint,
            status=0,
            response=b"",
            created_at=now,
        )
    )
    try:
        with for_every_commit(claim):
            response = await handler(request)
    except IntegrityError as exc:
        if claim.committed:
            raise Conflict(f"a request with this {HEADER} is already being processed") from exc
        raise
    if claim.committed and isinstance(response, web.Response) and response.body is not None:
        stored_body = _redacted(bytes(response.body))  # type: ignore[arg-type]
        await idempotent_requests.keep_answer(sessions, scope, key, response.status, stored_body)
    return response


#: Answer fields that hold a secret, and what a replay says in its place: every key and
#: secret is shown once (keys are kept as hashes, secrets sealed).
SECRETS = {
    "admin_key": "shown once and not stored: issue another with POST /v1/tenant/keys",
    "gateway_key": "shown once and not stored: issue another with POST /v1/tenant/keys",
    "key": "shown once and not stored: issue another with POST /v1/tenant/keys",
    "webhook_secret": "shown once and not stored: give the tenant a new one with POST "
    "/v1/tenant/secrets/webhook_secret/rotate",
    "provider_webhook_secret": "shown once and not stored: give the tenant a new one with "
    "POST /v1/tenant/secrets/provider_webhook_secret/rotate",
    "secret": "shown once and not stored: give the endpoint a new one with POST "
    "/v1/webhook-endpoints/{id}/rotate-secret",
}


def _redacted(body: bytes) -> bytes:
    """The answer as it may be kept: without the secrets in it."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(document, dict) or not SECRETS.keys() & document.keys():
        return body
    for name, note in SECRETS.items():
        if isinstance(document.get(name), str):
            document[name] = f"(redacted: {note})"
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


def _replay(stored: IdempotentRequest, fingerprint: str, now: datetime) -> web.Response:
    if stored.body_sha256 != fingerprint:
        raise InvalidRequest.field(
            HEADER,
            f"already used for a different request ({stored.method} {stored.path}); "
            "use a new key for a new request",
        )
    if stored.status == 0:
        if stored.created_at > now - LOST_AFTER:
            raise Conflict(f"the request with this {HEADER} is in progress: retry shortly")
        resource = _resource(stored)
        if resource is None:
            raise Conflict(
                f"the request with this {HEADER} completed and its answer was lost: read "
                "what it changed to see its state"
            )
        return web.json_response(
            {"detail": "the request with this key completed and its answer was lost: "
                       "its result is at Location", "location": resource},
            status=303,
            headers={"Location": resource, REPLAYED: "true"},
        )  # fmt: skip
    return web.Response(
        body=stored.response,
        status=stored.status,
        content_type="application/json",
        headers={REPLAYED: "true"},
    )
