"""Origin protection: a shared-secret header from the CDN, and signed URLs with an expiry.

Both are off by default. With either on, a request is let in when
* it carries `<origin_secret_header>: <origin_secret>` (what CloudFront adds as an origin custom
  header, like MediaPackage's CDN identifier), or
* its path holds a valid token component pair `token/<expires>-<signature>` (signing on), where
  expires is a Unix time and signature = hex HMAC-SHA256(url_signing_key, "<expires>\\n<scope>").
  The scope is the path without the token: for /pd/ the file, for the other protocols the
  directory of the media set ("/hls/movie.mp4/"), so one token covers a manifest and every
  segment it lists, and relative URLs in manifests carry it on by themselves.
Everything else is a 403 with the reason, except /health (the load balancer's check) and /purge
(which has its own key, web/purge.py). The token
is then removed from the path, so routing, validators and caches never see it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from vodorigin.errors import Forbidden
from vodorigin.web.responses import error_response

TOKEN = "token"
OPEN_PATHS = ("/health",)
OPEN_PREFIXES = ("/purge/",)


def signing_scope(path: str) -> str:
    """What a token covers: the /pd/ file, or the directory of the other protocols' media set
    (for MSS, the one above QualityLevels(...)/Fragments(...))."""
    if path.startswith("/pd/"):
        return path
    if path.startswith("/mss/") and "/QualityLevels(" in path:
        return path[: path.rfind("/QualityLevels(") + 1]
    return path[: path.rfind("/") + 1]


def signature(key: str, expires: int, path: str) -> str:
    message = f"{expires}\n{signing_scope(path)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_path(path: str, key: str, expires: int) -> str:
    """The path with a token placed after the protocol: /hls/token/<expires>-<signature>/movie.mp4/..."""
    protocol, _, rest = path.lstrip("/").partition("/")
    return f"/{protocol}/{TOKEN}/{expires}-{signature(key, expires, path)}/{rest}"


def split_token(path: str) -> tuple[str, str | None]:
    """(path without its token pair, the token) or (path, None)."""
    parts = path.split("/")
    for index in range(2, len(parts) - 1):  # after the protocol, never the file name
        if parts[index] == TOKEN:
            return "/".join(parts[:index] + parts[index + 2 :]), parts[index + 1]
    return path, None


def check_token(token: str, path: str, key: str, now: float) -> None:
    expires_text, _, given = token.partition("-")
    if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 12) or not given:
        raise Forbidden("malformed URL token (expected token/<expires>-<signature>)")
    expires = int(expires_text)
    if not hmac.compare_digest(given.encode(), signature(key, expires, path).encode()):
        raise Forbidden("URL signature does not match")
    if now > expires:
        raise Forbidden("URL signature expired")


class ProtectionMiddleware:
    def __init__(self, app: ASGIApp, secret_header: str, secret: str, signing_key: str) -> None:
        self.app = app
        self.secret_header = secret_header.lower().encode()
        self.secret = secret.encode()
        self.signing_key = signing_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.secret or self.signing_key) or scope["path"] in OPEN_PATHS \
                or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        path, token = split_token(scope["path"]) if self.signing_key else (scope["path"], None)
        try:
            self._admit(scope, path, token)
        except Forbidden as error:
            await error_response(error)(scope, receive, send)
            return
        if token is not None:
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)

    def _admit(self, scope: Scope, path: str, token: str | None) -> None:
        if self.secret:
            given = dict(scope["headers"]).get(self.secret_header)
            if given is not None and hmac.compare_digest(given, self.secret):
                return
        if self.signing_key and token is not None:
            check_token(token, path, self.signing_key, time.time())
            return
        if self.signing_key:
            raise Forbidden("this origin needs a signed URL (token/<expires>-<signature>/) "
                            "or the CDN's header")
        raise Forbidden("requests must come through the CDN")
