"""Answering "is this user authorized?": the pure decision table, the calling tenant's key,
/v1/authorize for applications and /v1/auth and Envoy ext_authz for reverse proxies."""
