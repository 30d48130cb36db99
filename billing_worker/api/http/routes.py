"""The one route table every handler module registers into."""

from __future__ import annotations

from billing_worker.api.http.routing import Router

router = Router()
