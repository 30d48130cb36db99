"""The entitlement view's write side: records staged in the transaction that changes them
(``outbox``) and drained into Redis by a versioned compare-and-set (``publisher``)."""
