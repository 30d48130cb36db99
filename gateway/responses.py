"""Response helpers shared by the gateway's endpoints."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from gateway.decisions.decision import Decision
from shared.problem import SlowBody, problem_response, read_body, slow_body_response

MAX_BODY = 8 * 1024


def encode(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)  # a newline for curl users


def json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return json_bytes_response(encode(payload), status)


def json_bytes_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


def invalid(field: str, reason: str) -> web.Response:
    return problem_response(
        422,
        "invalid_request",
        "The request has invalid fields.",
        f"{field}: {reason}",
        errors=[{"field": field, "reason": reason}],
    )


def unauthorized() -> web.Response:
    return problem_response(
        401,
        "unauthorized",
        "Missing or invalid gateway key",
        "send 'Authorization: Bearer <gateway key>' with a key of kind gateway (POST "
        '/v1/tenant/keys {"kind": "gateway"}); admin keys work on the management API '
        "only and the gateway never accepts them",
        headers={"WWW-Authenticate": 'Bearer realm="tollgate"'},
    )


def unavailable() -> web.Response:
    return problem_response(
        503,
        "unavailable",
        "Entitlements are unreachable",
        "The entitlement store did not answer in time; nothing was authorized.",
        headers={"Retry-After": "1"},
    )


def _too_large() -> web.Response:
    return problem_response(413, "body_too_large", f"Bodies are limited to {MAX_BODY} bytes")


async def raw_body(request: web.BaseRequest) -> bytes | web.Response:
    """The request's body as sent, or the problem response to send instead."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _too_large()
    content = request.content
    if content.is_eof():  # the whole body came with the headers: take it as it is
        raw = content.read_nowait()
        return _too_large() if len(raw) > MAX_BODY else raw
    try:
        return await read_body(request)
    except SlowBody:
        return slow_body_response()


def user_fields(raw: bytes) -> tuple[dict[str, Any], str] | web.Response:
    """The JSON object and its ``user``, or the problem response to send instead."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return problem_response(400, "malformed_body", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return invalid("body", "must be a JSON object")
    user_id = body.get("user")
    if not isinstance(user_id, str) or not 0 < len(user_id) <= 200:
        return invalid("user", "must be a string of 1 to 200 characters")
    return body, user_id


async def user_request(request: web.BaseRequest) -> tuple[dict[str, Any], str] | web.Response:
    """The JSON body and its ``user``, or the problem response to send instead."""
    raw = await raw_body(request)
    return raw if isinstance(raw, web.Response) else user_fields(raw)


@functools.lru_cache(maxsize=4096)
def _iso(timestamp: int) -> str:
    """Records share few distinct ``valid_until`` values: render each once."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def decision_body(user_id: str, decision: Decision) -> dict[str, Any]:
    record = decision.record
    valid_until = None
    if record is not None and record.valid_until is not None:
        valid_until = _iso(record.valid_until)
    return {
        "allow": decision.allow,
        "user": user_id,
        "account": record.account_id if record else None,
        "standing": decision.standing.value if decision.standing else None,
        "reason": decision.reason,
        "plan": record.plan if record else None,
        "features": list(record.features) if record else [],
        "valid_until": valid_until,
    }
