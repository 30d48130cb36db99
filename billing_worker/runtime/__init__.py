"""How the worker's jobs run, below every job: the repeat loop that survives any error, and
parking, which sets aside the one account or payment event a job cannot process."""
