"""The gateway's OpenAPI 3.1 document (``GET /openapi.json``).

The gateway has a handful of fixed endpoints, so the document is written here rather than
generated; the suite validates it and checks that it names every route the gateway serves.
"""

from __future__ import annotations

from typing import Any

from shared.states import Reason, Standing

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_USER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["user"],
                "properties": {
                    "user": {"type": "string", "minLength": 1, "maxLength": 200,
                             "description": "Your application's id of the end user"},
                    "feature": {"type": "string",
                                "description": "Also require this feature of the plan"},
                },
            }
        }
    },
}  # fmt: skip

_DECISION = {
    "type": "object",
    "required": ["allow", "user", "reason"],
    "properties": {
        "allow": {"type": "boolean"},
        "user": {"type": "string"},
        "account": {"type": ["string", "null"]},
        "standing": {"enum": [*[s.value for s in Standing], None]},
        "reason": {"enum": [r.value for r in Reason]},
        "plan": {"type": ["string", "null"]},
        "features": {"type": "array", "items": {"type": "string"}},
        "valid_until": {"type": ["string", "null"], "format": "date-time"},
    },
}

_SESSION = {
    "type": "object",
    "properties": {
        **_DECISION["properties"],  # type: ignore[dict-item]
        "session_id": {"type": "string"},
        "token": {"type": "string", "description": "The session cookie's value"},
        "idle_timeout": {"type": "integer"},
        "live_sessions": {"type": "integer"},
        "seat_limit": {"type": ["integer", "null"]},
        "evicted": {"type": "array", "items": {"type": "string"}},
    },
}

_KEYED: dict[str, Any] = {"security": [{"gateway_key": []}]}
_COMMON: dict[str, Any] = {
    "401": _problem("Missing or invalid gateway key"),
    "503": _problem("Redis could not be read and the tenant's fail policy allows no answer"),
}
_SESSION_ID = [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_PROXY = {
    "200": {
        "description": "Allowed (headers X-Tollgate-Tenant, -User, -Account, -Plan, -Standing)"
    },
    "401": {"description": "No live session of the bound tenant: log in"},
    "403": {
        "description": "Denied; the reason is in X-Tollgate-Reason (tenant_required: the "
        "check named no tenant and the gateway does not allow any)"
    },
}
#: What binds a proxy check to one tenant (one of them is required by default).
_BINDING = [
    {
        "name": "tenant",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Accept only this tenant's sessions",
    },
    {
        "name": "X-Tollgate-Tenant",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "As ?tenant=",
    },
    {
        "name": "X-Tollgate-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "A gateway key: accept only its tenant's sessions",
    },
]


def gateway_openapi(version: str, envoy_prefix: str, server: str) -> dict[str, Any]:
    proxy = {
        "summary": "Reverse-proxy check (nginx auth_request, Caddy forward_auth, Traefik "
        "ForwardAuth) of the session cookie or bearer session token, bound to one tenant",
        "parameters": _BINDING,
        "responses": _PROXY,
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tollgate gateway", "version": version},
        "servers": [{"url": server, "description": "this gateway"}],
        "paths": {
            "/v1/authorize": {"post": {
                "summary": "May this end user log in (or use this feature) now?",
                "requestBody": _USER_BODY, **_KEYED,
                "responses": {"200": _json("The decision", _DECISION),
                              "422": _problem("Invalid fields"), **_COMMON},
            }},
            "/v1/sessions": {"post": {
                "summary": "Log in: decide, enforce the seat limit and open a session",
                "requestBody": _USER_BODY, **_KEYED,
                "responses": {"201": _json("The session", _SESSION),
                              "403": _problem("Login denied (the reason is in the body)"),
                              "422": _problem("Invalid fields"), **_COMMON},
            }},
            "/v1/sessions/{session_id}/refresh": {"post": {
                "summary": "Re-check the standing and extend the session's idle expiry",
                "parameters": _SESSION_ID, **_KEYED,
                "responses": {"200": _json("The session", _SESSION),
                              "404": _problem("No such session"), **_COMMON},
            }},
            "/v1/sessions/{session_id}": {"delete": {
                "summary": "Log out", "parameters": _SESSION_ID, **_KEYED,
                "responses": {"204": {"description": "Ended"}, **_COMMON},
            }},
            "/v1/auth": {"get": proxy, "head": proxy},
            envoy_prefix + "/{path}": {"get": {
                "summary": "Envoy ext_authz (HTTP service): the original method and path",
                "parameters": [{"name": "path", "in": "path", "required": True,
                                "schema": {"type": "string"}}, *_BINDING],
                "responses": _PROXY,
            }},
            "/v1/key": {"get": {
                "summary": "The tenant this gateway key belongs to", **_KEYED,
                "responses": {"200": _json("The key's tenant", {
                    "type": "object", "required": ["tenant", "kind"],
                    "properties": {"tenant": {"type": "string"}, "kind": {"type": "string"}},
                }), **_COMMON},
            }},
            "/healthz": {"get": {"summary": "Liveness",
                                 "responses": {"200": {"description": "Up"}}}},
            "/readyz": {"get": {
                "summary": "Ready: Redis answers and the worker's view in it is whole",
                "responses": {"200": {"description": "Ready"}, "503": _problem("Not ready")},
            }},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Metrics"}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "schemas": {"Problem": {
                "type": "object", "description": "RFC 9457 problem details",
                "required": ["type", "title", "status", "code"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "code": {"type": "string"},
                               "detail": {"type": "string"}},
            }},
            "securitySchemes": {"gateway_key": {"type": "http", "scheme": "bearer"}},
        },
    }  # fmt: skip
