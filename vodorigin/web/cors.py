"""CORS headers on every response and OPTIONS answered directly (REFERENCE.md: Behind a CDN).

A pure ASGI middleware: cheaper than Starlette's BaseHTTPMiddleware, and it works for streamed
bodies and for error responses alike.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"Origin, Range, Accept-Encoding, Referer, Cache-Control"),
    (b"access-control-expose-headers", b"Server, Content-Length, Content-Range, Date"),
]
PREFLIGHT_MAX_AGE = (b"access-control-max-age", b"86400")


class CorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            headers = [*CORS_HEADERS, PREFLIGHT_MAX_AGE, (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *CORS_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_cors)
