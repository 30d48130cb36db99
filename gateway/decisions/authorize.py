"""``POST /v1/authorize``: may this end user log in (or use this feature) right now?"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.appkeys import CLOCK, METRICS, STORE, VERIFIED, WRITEBACK
from gateway.decisions.callers import tenant_for
from gateway.decisions.decision import Decision, decide, fail_open
from gateway.decisions.verified import VerifiedSecrets
from gateway.responses import (
    decision_body,
    invalid,
    json_response,
    unauthorized,
    unavailable,
    user_request,
)
from gateway.view.store import Reader, StoreUnavailable, read_record, read_user


async def _resolve(
    reader: Reader,
    verified: VerifiedSecrets,
    authorization: str | None,
    user_id: str,
    feature: str | None,
    now: float,
) -> tuple[str, Decision] | None:
    """The caller's tenant and the decision; None when the caller's key is not valid."""
    tenant_id = await tenant_for(reader, verified, authorization)
    if tenant_id is None:
        return None
    user = await read_user(reader, tenant_id, user_id)
    record = await read_record(reader, tenant_id, user.account_id) if user else None
    return tenant_id, decide(user, record, now, feature)


async def authorize(request: web.Request) -> web.Response:
    started = time.perf_counter()
    metrics = request.app[METRICS]
    parsed = await user_request(request)
    if isinstance(parsed, web.Response):
        return parsed
    body, user_id = parsed
    feature = body.get("feature")
    if feature is not None and not isinstance(feature, str):
        return invalid("feature", "must be a string")
    store = request.app[STORE]
    now = request.app[CLOCK].timestamp()
    authorization = request.headers.get("Authorization")
    verified = request.app[VERIFIED]
    stale_age = 0.0
    try:
        resolved = await _resolve(store.live, verified, authorization, user_id, feature, now)
    except StoreUnavailable:
        reader = store.last_known()
        resolved = await _resolve(reader, verified, authorization, user_id, feature, now)
        stale_age = reader.max_age
        if resolved is not None:
            resolved = resolved[0], fail_open(resolved[1], stale_age)
        if resolved is None or not resolved[1].allow:
            metrics.decided("authorize", "error", "unavailable", time.perf_counter() - started)
            return unavailable()
    if resolved is None:
        metrics.decided("authorize", "unauthorized", "bad_key", time.perf_counter() - started)
        return unauthorized()
    tenant_id, decision = resolved
    if decision.allow and decision.record is not None:
        request.app[WRITEBACK].active(
            decision.record.tenant_id, decision.record.account_id, user_id, now
        )
    response = json_response(decision_body(user_id, decision))
    if stale_age:
        response.headers["X-Tollgate-Stale"] = f"{stale_age:.1f}"
    outcome = "allow" if decision.allow else "deny"
    metrics.decided("authorize", outcome, decision.reason, time.perf_counter() - started)
    request.app[WRITEBACK].decided(tenant_id, outcome, decision.reason, now)
    return response
