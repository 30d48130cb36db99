"""Tollgate from Python: the gateway (authorize, sessions, checks), the management calls an
application makes, and middleware that protects ASGI and WSGI applications."""

from tollgate_client.gateway import AsyncGateway, Gateway
from tollgate_client.management import AsyncManagement, Management
from tollgate_client.middleware import TollgateASGI, TollgateWSGI
from tollgate_client.results import Check, Decision, Login, TollgateError, Unavailable

__all__ = [
    "AsyncGateway",
    "AsyncManagement",
    "Check",
    "Decision",
    "Gateway",
    "Login",
    "Management",
    "TollgateASGI",
    "TollgateError",
    "TollgateWSGI",
    "Unavailable",
]
