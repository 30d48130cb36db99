"""``POST /v1/authorize``: may this end user log in (or use this feature) right now?"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.appkeys import GATE
from gateway.decisions.callers import tenant_for
from gateway.decisions.decision import Decision, decide, fail_open
from gateway.decisions.gate import Gate
from gateway.decisions.verified import VerifiedSecrets
from gateway.responses import (
    decision_body,
    encode,
    invalid,
    json_bytes_response,
    raw_body,
    unauthorized,
    unavailable,
    user_fields,
)
from gateway.view.store import Reader, RecordingReader, StoreUnavailable, read_record, read_user
from shared.entitlement import EntitlementRecord, UserEntry

Resolved = tuple[str, UserEntry | None, EntitlementRecord | None]
#: Bodies up to this size have their answers kept (a login's body is a few dozen bytes).
KEPT_BODY = 512


async def _resolve(
    reader: Reader, verified: VerifiedSecrets, authorization: str | None, user_id: str
) -> Resolved | None:
    """The caller's tenant, the user and the account's record; None for an invalid key."""
    tenant_id = await tenant_for(reader, verified, authorization)
    if tenant_id is None:
        return None
    user = await read_user(reader, tenant_id, user_id)
    record = await read_record(reader, tenant_id, user.account_id) if user else None
    return tenant_id, user, record


async def answer(gate: Gate, request: web.BaseRequest) -> web.Response:
    started = time.perf_counter()
    raw = await raw_body(request)
    if isinstance(raw, web.Response):
        return raw
    authorization = request.headers.get("Authorization")
    now = gate.clock.timestamp()
    key = (authorization, raw)
    kept = gate.answers.get(key, now)
    if kept is not None:
        decision, encoded = kept.decision, kept.payload
        return _answered(gate, kept.tenant_id, kept.user_id, decision, encoded, now, started)
    parsed = user_fields(raw)
    if isinstance(parsed, web.Response):
        return parsed
    body, user_id = parsed
    feature = body.get("feature")
    if feature is not None and not isinstance(feature, str):
        return invalid("feature", "must be a string")
    reader = RecordingReader(gate.store.live)
    try:
        resolved = await _resolve(reader, gate.verified, authorization, user_id)
    except StoreUnavailable:
        return await _last_known(gate, authorization, user_id, feature, now, started)
    if resolved is None:
        gate.metrics.decided("authorize", "unauthorized", "bad_key", time.perf_counter() - started)
        return unauthorized()
    tenant_id, user, record = resolved
    decision = decide(user, record, now, feature)
    encoded = encode(decision_body(user_id, decision))
    if len(raw) <= KEPT_BODY:
        gate.answers.keep(key, encoded, decision, tenant_id, user_id, reader.reads, now)
    return _answered(gate, tenant_id, user_id, decision, encoded, now, started)


async def _last_known(
    gate: Gate,
    authorization: str | None,
    user_id: str,
    feature: str | None,
    now: float,
    started: float,
) -> web.Response:
    """Redis did not answer: a last-known allow while the tenant's fail policy permits."""
    reader = gate.store.last_known()
    resolved = await _resolve(reader, gate.verified, authorization, user_id)
    if resolved is not None:
        tenant_id, user, record = resolved
        decision = fail_open(decide(user, record, now, feature), reader.max_age)
        if decision.allow:
            body = encode(decision_body(user_id, decision))
            response = _answered(gate, tenant_id, user_id, decision, body, now, started)
            if reader.max_age:
                response.headers["X-Tollgate-Stale"] = f"{reader.max_age:.1f}"
            return response
    gate.metrics.decided("authorize", "error", "unavailable", time.perf_counter() - started)
    return unavailable()


def _answered(
    gate: Gate,
    tenant_id: str,
    user_id: str,
    decision: Decision,
    body: bytes,
    now: float,
    started: float,
) -> web.Response:
    record = decision.record
    if decision.allow and record is not None:
        gate.writeback.active(record.tenant_id, record.account_id, user_id, now)
    outcome = "allow" if decision.allow else "deny"
    gate.metrics.decided("authorize", outcome, decision.reason, time.perf_counter() - started)
    gate.writeback.decided(tenant_id, outcome, decision.reason, now)
    return json_bytes_response(body)


async def authorize(request: web.Request) -> web.Response:
    return await answer(request.app[GATE], request)
