"""CORS (REFERENCE.md: Behind a CDN): the headers every response carries, and the answer to a
preflight (OPTIONS). The front middleware (web/observe.py) applies both, in the one wrapper of
`send` it puts around every request, so that CORS holds for streamed bodies and error responses
alike.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

CORS_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"Origin, Range, Accept-Encoding, Referer, Cache-Control"),
    (b"access-control-expose-headers", b"Server, Content-Length, Content-Range, Date"),
)
PREFLIGHT_HEADERS = [(b"access-control-max-age", b"86400"), (b"content-length", b"0")]


async def preflight(scope: Scope, receive: Receive, send: Send) -> None:
    """A preflight's answer, whatever its path: 204, cacheable for a day (the CORS headers are the
    front's to add)."""
    await send({"type": "http.response.start", "status": 204, "headers": list(PREFLIGHT_HEADERS)})
    await send({"type": "http.response.body", "body": b""})
