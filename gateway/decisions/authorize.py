"""``POST /v1/authorize``: may this end user log in (or use this feature) right now?"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.appkeys import GATE
from gateway.decisions.answers import Answer
from gateway.decisions.callers import tenant_for
from gateway.decisions.decision import Decision, decide, fail_open, lapsed
from gateway.decisions.gate import Gate
from gateway.decisions.verified import VerifiedSecrets
from gateway.responses import (
    decision_body,
    encode,
    invalid,
    json_bytes_response,
    unauthorized,
    unavailable,
    user_request,
)
from gateway.view.store import Reader, StoreUnavailable, read_record, read_user
from shared.entitlement import EntitlementRecord, UserEntry

Resolved = tuple[str, UserEntry | None, EntitlementRecord | None]


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


def _decided(
    gate: Gate, resolved: Resolved, user_id: str, feature: str | None, now: float
) -> Answer:
    """The answer for what was read: the one already encoded, or a new one."""
    tenant_id, user, record = resolved
    key = (tenant_id, user_id, feature)
    known = gate.answers.get(key, user, record, now)
    if known is not None:
        return known
    decision = decide(user, record, now, feature)
    body = encode(decision_body(user_id, decision))
    answer = Answer(user, record, lapsed(record, now), decision, body)
    gate.answers.put(key, answer)
    return answer


async def answer(gate: Gate, request: web.BaseRequest) -> web.Response:
    started = time.perf_counter()
    metrics = gate.metrics
    parsed = await user_request(request)
    if isinstance(parsed, web.Response):
        return parsed
    body, user_id = parsed
    feature = body.get("feature")
    if feature is not None and not isinstance(feature, str):
        return invalid("feature", "must be a string")
    store = gate.store
    now = gate.clock.timestamp()
    authorization = request.headers.get("Authorization")
    verified = gate.verified
    try:
        resolved = await _resolve(store.live, verified, authorization, user_id)
    except StoreUnavailable:
        return await _last_known(gate, authorization, user_id, feature, now, started)
    if resolved is None:
        metrics.decided("authorize", "unauthorized", "bad_key", time.perf_counter() - started)
        return unauthorized()
    answer = _decided(gate, resolved, user_id, feature, now)
    decision = answer.decision
    return _answered(gate, resolved[0], user_id, decision, answer.body, now, started)


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
