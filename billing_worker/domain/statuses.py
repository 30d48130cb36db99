"""The statuses stored on the worker's rows, as the enums they are: code compares and sets
them by name, never by a string typed again (a ``StrEnum`` is the string it stores, so a
query or a row reads the same)."""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    #: Owed by no one until committed (reviewed invoices, a parent's daily summary).
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    WRITTEN_OFF = "written_off"


class AttemptStatus(StrEnum):
    """A charge attempt: stored before the provider is called, settled by its answer."""

    PENDING = "pending"
    #: No answer (a timeout): the reconciler finds out.
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"


#: A charge whose outcome is not known yet: it may have been made.
UNSETTLED = (AttemptStatus.PENDING, AttemptStatus.UNKNOWN)
#: A charge that did not take money.
UNSUCCESSFUL = (AttemptStatus.DECLINED, AttemptStatus.FAILED)


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
