"""SQL persistence: models, engine and the repository functions (always tenant-scoped)."""
