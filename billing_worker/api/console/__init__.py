"""The operator console: server-rendered pages for billing administrators, served by the
management API process under ``/console`` (Jinja2 templates, a little htmx, no build step).

Its pages read; its forms call the management API with the console's session cookie and
CSRF token, so each change goes through the same validation and audit as an API call.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from billing_worker.api.console import catalog_page, pages, signin, timeline_page

STATIC = Path(__file__).parent / "static"


def install(app: web.Application) -> None:
    """Add the console's routes, templates and static files to the management API."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("billing_worker.api.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.router.add_routes(signin.routes)
    app.router.add_routes(pages.routes)
    app.router.add_routes(catalog_page.routes)
    app.router.add_routes(timeline_page.routes)
    app.cleanup_ctx.append(timeline_page.timeline_queue)
    static = app.router.add_static("/console/static", STATIC, append_version=True)
    # versioned URLs (``?v=<hash>``): a new release is never served a cached old script
    env.globals["static"] = lambda name: str(static.url_for(filename=name))
