"""Reading the worker's entitlement view: the in-process near-cache, one batched Redis
read per event-loop turn, and the store that follows the worker's invalidations."""
