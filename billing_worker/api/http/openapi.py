"""The OpenAPI 3.1 document, generated from the route declarations and body types."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from billing_worker.api.http.routing import Role, RouteSpec
from billing_worker.domain.events import CATALOGUE

_PARAM = re.compile(r"{(\w+)}")
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ERROR_TEXT = {
    400: "Malformed body",
    401: "Missing or invalid API key",
    403: "Key not allowed here",
    404: "Not found",
    408: "The body did not arrive in time",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid fields (each named with its reason), or more billing than one request "
    "may do (too_much_at_once)",
    503: "Busy (the request waited TOLLGATE_REQUEST_SECONDS for the database; retry) or "
    "unavailable",
}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retrying with the same key and request returns the first answer "
    "(Idempotent-Replayed: true) and changes nothing; the same key with another request is a "
    "422.",
}


def _has_required_field(kind: type) -> bool:
    if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
        return True
    return any(f.required for f in msgspec.structs.fields(kind))


def _error_statuses(spec: RouteSpec) -> set[int]:
    """Every error status a route may answer: its own, and those every route of its kind has."""
    statuses = set(spec.errors) | {503}  # busy: its time waiting for the database ran out
    if spec.role is not Role.PUBLIC:
        statuses |= {401, 403}
    if spec.request is not None or spec.raw_body is not None:
        statuses |= {400, 408, 413, 422}  # malformed, too slow, too large, invalid
    if spec.method == "POST" and spec.role is not Role.PUBLIC:
        statuses |= {409, 422}  # Idempotency-Key: one in progress; unreadable or reused
    if spec.method != "GET":
        statuses |= {422}  # too_much_at_once: more billing than one request may do
    return statuses


def build_openapi(
    specs: list[RouteSpec], *, version: str, server: str | None = None
) -> dict[str, Any]:
    types = [t for spec in specs for t in (spec.request, spec.response) if t is not None]
    (refs, components) = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    ref_of = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {"summary": spec.summary, "responses": {}}
        parameters: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in _PARAM.findall(spec.path)
        ]
        if spec.method == "POST" and spec.role is not Role.PUBLIC:
            parameters.append(_IDEMPOTENCY_KEY)
        if parameters:
            operation["parameters"] = parameters
        if spec.request is not None:
            operation["requestBody"] = {
                # A body whose every field has a default may be left out (it reads as {}).
                "required": _has_required_field(spec.request),
                "content": {"application/json": {"schema": ref_of[spec.request]}},
            }
        elif spec.raw_body is not None:
            operation["requestBody"] = {"required": True, "content": spec.raw_body}
        ok: dict[str, Any] = {"description": "Success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": ref_of[spec.response]}}
        elif spec.raw_response is not None:
            ok["content"] = spec.raw_response
        operation["responses"][str(spec.status)] = ok
        if spec.role is not Role.PUBLIC:
            operation["security"] = [{"bearer": []}]
        for status in sorted(_error_statuses(spec)):
            operation["responses"][str(status)] = {
                "description": _ERROR_TEXT.get(status, "Error"),
                "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    components["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
        "required": ["type", "title", "status", "code"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tollgate management API", "version": version},
        "servers": [{"url": server or "/", "description": "this worker"}],
        "paths": paths,
        "webhooks": _webhooks() if "EventOut" in components else {},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _webhooks() -> dict[str, Any]:
    """The lifecycle events an endpoint receives (``domain.events``), as OpenAPI 3.1
    webhooks: each a signed POST of the event envelope with its ``type``."""
    signature = {
        "name": "Tollgate-Signature",
        "in": "header",
        "required": True,
        "description": "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>' with the "
        "endpoint's secret>; refuse a delivery whose time is more than 5 minutes off",
        "schema": {"type": "string"},
    }
    return {
        kind: {
            "post": {
                "summary": description,
                "parameters": [signature],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {"$ref": "#/components/schemas/EventOut"},
                                    {"properties": {"type": {"const": kind}}},
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Received; any other answer is retried with backoff"}
                },
            }
        }
        for kind, description in CATALOGUE.items()
    }
