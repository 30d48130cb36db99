"""What every page of the API process tells the browser, and the scheme behind a proxy.

The console's pages (and the invoice documents it shows) are signed-in content: a browser
may not frame them (clickjacking), guess their type, keep them in its cache, or send their
addresses to other sites, and may run only the scripts this server serves (no inline or
injected script: the Content-Security-Policy). Styles may be inline — the invoice document
carries its own, so that its PDF and its page look alike — but nothing else may be.

Behind a proxy that terminates TLS the API sees plain HTTP; ``X-Forwarded-Proto: https``
from a trusted proxy (``TOLLGATE_API_TRUSTED_PROXIES``, loopback by default) makes the
request secure, so the console's cookies are set ``Secure``. From any other peer the
header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.settings import Network

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: Versioned static files may be cached; they still get every other header.
STATIC = "/console/static/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def add_page_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no answer is sniffed; pages get the browser's rules."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type == "text/html" or request.path.startswith("/console"):
        for name, value in PAGE_HEADERS.items():
            if name == "Cache-Control" and request.path.startswith(STATIC):
                continue
            response.headers.setdefault(name, value)


def forwarded_scheme(trusted: tuple[Network, ...]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that takes ``X-Forwarded-Proto`` from the ``trusted`` proxies only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if scheme in ("http", "https") and scheme != request.scheme and _trusted(request, trusted):
            request = request.clone(scheme=scheme)
        return await handler(request)

    return middleware


def _trusted(request: web.Request, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(address in network for network in trusted)
