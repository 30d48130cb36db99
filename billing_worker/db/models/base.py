"""The declarative base: naming conventions and UTC datetimes on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DateTime,
    MetaData,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}
    #: What the audit log calls this kind of object (``billing_worker.db.audit``); a model
    #: without one is not audited (bookkeeping: outbox rows, attempts, usage, messages).
    __audit_name__: ClassVar[str] = ""
    #: The fields whose changes the audit log records; the rest is the worker's bookkeeping
    #: (when to evaluate next, published versions...), which would drown the changes.
    __audited__: ClassVar[frozenset[str]] = frozenset()
    #: Audited fields whose changes make lifecycle events but no audit-log row: what the
    #: worker derives from changes the log already has (an account's entitlement answer),
    #: or changes too frequent to log (the usage folds).
    __events_only__: ClassVar[frozenset[str]] = frozenset()
