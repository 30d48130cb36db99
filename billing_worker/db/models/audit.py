"""The audit log: who changed what, when, from which request or job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from billing_worker.db.models.base import Base


class AuditEntry(Base):
    """One committed change of one object, written in the transaction that made it
    (``billing_worker.db.audit``): a rolled-back change leaves none."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: None for what belongs to no tenant (none today; kept for operator-wide objects).
    tenant_id: Mapped[str | None] = mapped_column(String(32))
    #: Wall-clock time of the change (never the test clock: an audit says when it happened).
    at: Mapped[datetime]
    #: ``admin_key``, ``operator``, ``job``, ``command`` or ``anonymous`` (a signed webhook).
    actor_kind: Mapped[str] = mapped_column(String(16))
    #: The key's id, the job's or command's name; None for the operator and the anonymous.
    actor_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    #: ``account``, ``subscription``, ``invoice``... (the ``__audit_name__`` of the model).
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    #: ``created``, ``updated`` or ``deleted``.
    action: Mapped[str] = mapped_column(String(16))
    #: ``{field: [before, after]}``; secrets as ``"[redacted]"``; for a list that grew, the
    #: after side holds only what was added (``{"added": [...]}``).
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (
        Index("ix_audit_log_tenant", "tenant_id", "id"),
        Index("ix_audit_log_object", "tenant_id", "object_type", "object_id", "id"),
    )
