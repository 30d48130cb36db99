"""The tenant's audit log: every committed change, who made it (a key, the operator, a
job or a command), from which request, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from msgspec import Struct
from sqlalchemy import select

from billing_worker.api.customers.directory import page_size
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond, serial_id
from billing_worker.db.audit import ActorKind
from billing_worker.db.models import AuditEntry
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
    limit, query, tenant_id = page_size(request), request.query, tenant_of(request)
    where: list[Any] = [AuditEntry.tenant_id == tenant_id]
    problems: list[FieldError] = []
    for name, column in (
        ("object_type", AuditEntry.object_type),
        ("object_id", AuditEntry.object_id),
        ("actor_id", AuditEntry.actor_id),
    ):
        if name in query:
            where.append(column == query[name])
    if "actor_kind" in query:
        kinds = [k.value for k in ActorKind]
        if query["actor_kind"] not in kinds:
            problems.append(FieldError("actor_kind", f"one of {', '.join(kinds)}"))
        where.append(AuditEntry.actor_kind == query["actor_kind"])
    since, until = _instant(query, "from", problems), _instant(query, "to", problems)
    if since and until and since > until:
        problems.append(FieldError("to", "must not be before from"))
    where += [AuditEntry.at >= since] if since else []
    where += [AuditEntry.at <= until] if until else []
    if "after" in query:
        after = serial_id(query["after"])
        if after is not None:
            where.append(AuditEntry.id < after)
        else:
            problems.append(FieldError("after", "must be an audit entry's id"))
    if problems:
        raise InvalidRequest.fields(problems)
    async with request.app[SESSIONS]() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(*where).order_by(AuditEntry.id.desc()).limit(limit + 1)
            )
        ).all()
    page = entries[:limit]
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
    more = len(entries) > limit
    return respond(AuditPage(data=data, next=str(page[-1].id) if more else None))
