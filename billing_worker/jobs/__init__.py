"""The worker's jobs over the services below: catching accounts up to now, moment by moment
(``catch_up``), the scheduler that finds who is due (``scheduler``), tenant-wide invoice
runs (``invoice_runs``) and the self-healing rebuild of the Redis view (``rebuild``)."""
