"""The audit log, written by the database layer itself: after each flush, every audited
object created, changed or deleted in it gets a row naming who did it (``Actor``), in
the same transaction -- so a committed change always has its row and a rolled-back one
never does, whichever API handler, job or command made it. The lifecycle events a change
makes (``domain.events``) are written beside its row, for the tenant's webhook endpoints.

Who is acting is a context variable: the API's middleware sets it per request (the key, or
the operator, and the request id), each worker job's task carries its own (``job_context``),
a command sets it with ``acting_as``. A model opts in with ``__audit_name__`` and the
fields it audits (``__audited__``); the worker's bookkeeping fields stay out of the log.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import InstanceState, PassiveFlag, Session
from sqlalchemy.orm.util import identity_key

from billing_worker.db.models import Account, AuditEntry, Base, Event, Payment, Refund, Tenant
from billing_worker.db.sealed import Sealed
from billing_worker.domain.events import events_of

#: Fields whose values never enter the log (nor the events): a change shows as
#: ``"[redacted]"``. Every sealed column (``db.sealed``) is one; so are these.
SECRETS = frozenset(("secret_hash", "token"))
REDACTED = "[redacted]"


@functools.cache
def _audited_in_order(model: type[Base]) -> tuple[str, ...]:
    return tuple(sorted(model.__audited__))


@functools.cache
def _secret_fields(model: type[Base]) -> frozenset[str]:
    sealed = {c.key for c in model.__table__.columns if isinstance(c.type, Sealed)}
    return frozenset(sealed | (SECRETS & model.__audited__))


class ActorKind(enum.StrEnum):
    ADMIN_KEY = "admin_key"
    OPERATOR = "operator"
    JOB = "job"
    COMMAND = "command"
    #: A request no key vouches for: a payment provider's signed webhook.
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str | None = None
    request_id: str | None = None


#: Who acts where nothing said: a `tollgate` command (seed, invoice-run, rebuild).
COMMAND = Actor(ActorKind.COMMAND, "tollgate")
_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "tollgate_actor", default=None
)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute what is changed inside the block to ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def job_context(name: str) -> contextvars.Context:
    """A context for a job's task (``asyncio.create_task(..., context=...)``): what the
    job changes is the job's."""
    context = contextvars.copy_context()
    context.run(_ACTOR.set, Actor(ActorKind.JOB, name))
    return context


def _plain(value: Any) -> Any:
    """A value as JSON holds it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | bytes):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _change(field: str, before: Any, after: Any, secrets: frozenset[str]) -> list[Any]:
    if field in secrets:
        return [None if before is None else REDACTED, None if after is None else REDACTED]
    if isinstance(before, list) and isinstance(after, list) and after[: len(before)] == before:
        return [None, {"added": [_plain(v) for v in after[len(before) :]]}]
    return [_plain(before), _plain(after)]


def _changes(obj: Base, state: InstanceState[Base], action: str) -> dict[str, list[Any]]:
    audited, secrets = type(obj).__audited__, _secret_fields(type(obj))
    if action != "updated":  # created or deleted: every audited value, on its side
        values = {f: state.dict.get(f) for f in _audited_in_order(type(obj))}
        created = action == "created"
        return {
            f: _change(f, None if created else v, v if created else None, secrets)
            for f, v in values.items()
            if v is not None
        }
    changes: dict[str, list[Any]] = {}
    # only the fields set since loading have a history (``committed_state``)
    for field in sorted(audited & state.committed_state.keys()):
        history = state.get_history(field, PassiveFlag.PASSIVE_NO_INITIALIZE)  # loads nothing
        before = history.deleted[0] if history.deleted else None
        after = history.added[0] if history.added else None
        if before != after:
            changes[field] = _change(field, before, after, secrets)
    return changes


def _row(obj: Base, action: str, actor: Actor, at: datetime) -> dict[str, Any] | None:
    state = inspect(obj)
    changes = _changes(obj, state, action)
    if action == "updated" and not changes:
        return None
    identity = state.mapper.primary_key_from_instance(obj)
    return {
        "tenant_id": obj.id if isinstance(obj, Tenant) else getattr(obj, "tenant_id", None),
        "at": at,
        "actor_kind": actor.kind.value,
        "actor_id": actor.id,
        "request_id": actor.request_id,
        "object_type": type(obj).__audit_name__,
        # a composite key (a usage day: account and day) reads "acc_…:2027-01-31"
        "object_id": ":".join(str(part) for part in identity if part is not None),
        "action": action,
        "changes": changes,
    }


def record_flush(session: Session) -> None:
    """Write the flush's audit rows, and the lifecycle events they make, in its
    transaction (the unit of work calls it after every flush)."""
    actor, at = _ACTOR.get() or COMMAND, datetime.now(UTC)
    rows, events = [], []
    for objects, action in (
        (session.new, "created"),
        (session.dirty, "updated"),
        (session.deleted, "deleted"),
    ):
        for obj in objects:
            if isinstance(obj, Base) and type(obj).__audit_name__:
                row = _row(obj, action, actor, at)
                if row is not None:
                    events += _events(session, obj, row)
                    logged = _logged(type(obj).__events_only__, row)
                    if logged is not None:
                        rows.append(logged)
    if rows:
        session.connection().execute(insert(AuditEntry), rows)
    if events:
        session.connection().execute(insert(Event), events)


def _logged(events_only: frozenset[str], row: dict[str, Any]) -> dict[str, Any] | None:
    """The audit row without the fields that make events only; None when nothing is left."""
    if not events_only:
        return row
    kept = {f: change for f, change in row["changes"].items() if f not in events_only}
    return {**row, "changes": kept} if kept else None


def _events(session: Session, obj: Base, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The lifecycle events (``domain.events``) of one audited change."""
    types = events_of(row["object_type"], row["action"], row["changes"])
    if not types or row["tenant_id"] is None:
        return []
    data = {"object": row["object_type"], "id": row["object_id"], "changes": row["changes"]}
    return [
        {"public_id": "evt_" + secrets.token_hex(10), "tenant_id": row["tenant_id"],
         "account_id": _account_of(session, obj), "type": t, "data": data,
         "created_at": row["at"]}
        for t in types
    ]  # fmt: skip


def _account_of(session: Session, obj: Base) -> str | None:
    if isinstance(obj, Account):
        return obj.id
    if isinstance(obj, Refund):  # through its payment, when the session holds it
        payment = session.identity_map.get(identity_key(Payment, obj.payment_id))
        return payment.account_id if isinstance(payment, Payment) else None
    account_id = getattr(obj, "account_id", None)
    return account_id if isinstance(account_id, str) else None
