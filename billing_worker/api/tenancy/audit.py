"""The tenant's audit log: every committed change, who made it (a key, the operator, a
job or a command), from which request, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from msgspec import Struct

from billing_worker.api.customers.directory import page_size
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond, serial_id
from billing_worker.db.audit import ActorKind
from billing_worker.services.audit import AuditFilter, audit_page
from billing_worker.services.errors import FieldError, InvalidRequest


class AuditActor(Struct, kw_only=True):
    #: ``admin_key``, ``operator``, ``job``, ``command`` or ``anonymous`` (a signed webhook).
    kind: str
    #: The admin key's id, or the job's or command's name.
    id: str | None


class AuditOut(Struct, kw_only=True):
    id: int
    at: datetime
    actor: AuditActor
    #: The API request that made the change (its ``X-Request-Id``); null for jobs.
    request_id: str | None
    object_type: str
    object_id: str
    #: ``created``, ``updated`` or ``deleted``.
    action: str
    #: ``{"field": [before, after]}``; secrets show as ``"[redacted]"``, money in minor units.
    changes: dict[str, Any]


class AuditPage(Struct, kw_only=True):
    data: list[AuditOut]
    #: Pass as ``after`` for the next page; null on the last one.
    next: str | None


def _instant(query: Any, name: str, problems: list[FieldError]) -> datetime | None:
    if name not in query:
        return None
    try:
        value = datetime.fromisoformat(query[name])
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        problems.append(FieldError(name, "must be a time with its zone, e.g. 2027-01-31T00:00Z"))
        return None
    return value


@router.route(
    "GET",
    "/v1/audit",
    summary="The tenant's audit log, newest first, a page at a time (?limit=1..100, "
    "?after=<entry id>), filtered by ?object_type=, ?object_id=, ?actor_kind=, ?actor_id= "
    "and ?from=/?to= (times, inclusive)",
    role=Role.TENANT,
    response=AuditPage,
    errors=(422,),
)
async def list_audit(request: web.Request) -> web.Response:
    limit, query = page_size(request), request.query
    problems: list[FieldError] = []
    kinds = [k.value for k in ActorKind]
    if "actor_kind" in query and query["actor_kind"] not in kinds:
        problems.append(FieldError("actor_kind", f"one of {', '.join(kinds)}"))
    since, until = _instant(query, "from", problems), _instant(query, "to", problems)
    if since and until and since > until:
        problems.append(FieldError("to", "must not be before from"))
    after = serial_id(query["after"]) if "after" in query else None
    if "after" in query and after is None:
        problems.append(FieldError("after", "must be an audit entry's id"))
    if problems:
        raise InvalidRequest.fields(problems)
    wanted = AuditFilter(
        object_type=query.get("object_type"), object_id=query.get("object_id"),
        actor_id=query.get("actor_id"), actor_kind=query.get("actor_kind"), since=since,
        until=until,
    )  # fmt: skip
    async with request.app[SESSIONS]() as session:
        page, more = await audit_page(session, tenant_of(request), wanted, after=after, limit=limit)
    data = [
        AuditOut(
            id=e.id,
            at=e.at,
            actor=AuditActor(kind=e.actor_kind, id=e.actor_id),
            request_id=e.request_id,
            object_type=e.object_type,
            object_id=e.object_id,
            action=e.action,
            changes=e.changes,
        )
        for e in page
    ]
    return respond(AuditPage(data=data, next=str(page[-1].id) if more else None))
