"""Tenants and their keys (the operator's and the tenant's own settings), health and the
OpenAPI document, and the test clock of test mode."""
