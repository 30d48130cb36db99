"""The API's HTTP machinery, shared by every route: the route table and its roles,
authentication, problem+json errors, Idempotency-Key, request bounds, the OpenAPI
document, and the shared request and response types and views."""
