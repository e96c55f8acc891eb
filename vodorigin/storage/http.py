"""An HTTP upstream (CloudFront, another origin, any server that honours Range; RFC 9110).

Media path P is <base_url>/P. stat is a HEAD (size, ETag, Last-Modified); read is a GET with one
Range that must come back as a 206 with the Content-Range asked for and exactly that many bytes.
An upstream that ignores Range (200) is refused before its body is read, so a whole object is
never pulled through. One attempt per call: storage/reads.py retries and enforces the deadline.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from vodorigin.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout
from vodorigin.media.model import SourceIdentity
from vodorigin.storage.local import check_relative_path

log = logging.getLogger("vodorigin.upstream")


class HttpStorage:
    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 10.0,
                 max_connections: int = 32) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """One keep-alive pool per application, made on first use (inside the event loop)."""
        if self._client is None:
            pool = self.max_connections
            limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            self._client = httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits,
                                             follow_redirects=False)
        return self._client

    def url(self, path: str) -> str:
        return f"{self.base_url}/{quote(check_relative_path(path))}"

    async def stat(self, path: str) -> SourceIdentity:
        url = self.url(path)
        try:
            response = await self.client.head(url)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, "HEAD", url) from None
        _check_status(response, "HEAD", url, path)
        length = response.headers.get("content-length")
        if length is None or not length.isdigit():
            raise UpstreamError(f"HEAD {url}: no Content-Length")
        return SourceIdentity(path, int(length), _mtime(response.headers.get("last-modified")),
                              response.headers.get("etag", "").strip('"'))

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        url = self.url(source.path)
        byte_range = f"bytes={offset}-{offset + length - 1}"
        try:
            async with self.client.stream("GET", url, headers={"range": byte_range}) as response:
                return await _receive(response, url, source.path, offset, length)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, "GET", url) from None

    async def probe(self) -> str | None:
        """The startup check: does the upstream answer at all? Any status below 500 passes (the base
        URL itself need not be a file); a 5xx or no answer is the problem returned."""
        try:
            response = await self.client.head(self.base_url + "/")
        except httpx.HTTPError as exc:
            return f"{self.base_url} is unreachable ({type(exc).__name__}: {exc})"
        if response.status_code >= 500:
            return f"{self.base_url} answered {response.status_code}"
        return None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _receive(response: httpx.Response, url: str, path: str, offset: int, length: int) -> bytes:
    """The body of a ranged GET, checked: a 206 for exactly the range asked, and all of it."""
    if response.status_code == 200:
        log.warning("GET %s: upstream ignored Range (answered 200); not reading the body", url)
        raise UpstreamError(f"{path}: the upstream ignored the Range request")
    _check_status(response, "GET", url, path)
    content_range = response.headers.get("content-range", "")
    if response.status_code != 206 or not content_range.startswith(f"bytes {offset}-{offset + length - 1}/"):
        log.warning("GET %s: answered %d with Content-Range %r for %d+%d", url, response.status_code,
                    content_range, offset, length)
        raise UpstreamError(f"{path}: the upstream answered another range")
    chunks = []
    received = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        received += len(chunk)
        if received > length:
            break
    if received != length:
        log.warning("GET %s: %d bytes instead of %d", url, received, length)
        raise UpstreamError(f"{path}: short body ({received} of {length} bytes)", retryable=True)
    return b"".join(chunks)


def _check_status(response: httpx.Response, method: str, url: str, path: str) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    log.warning("%s %s: upstream answered %d", method, url, status)
    if status == 404:
        raise NotFound(f"{path}: not found upstream")
    if status in (401, 403):
        raise Forbidden(f"{path}: the upstream denied access ({status})")
    retryable = status >= 500 or status == 429
    raise UpstreamError(f"{path}: upstream answered {status}", retryable=retryable)


def _transport_error(exc: httpx.HTTPError, method: str, url: str) -> UpstreamError:
    log.warning("%s %s: %s: %s", method, url, type(exc).__name__, exc)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{url}: upstream timed out")
    return UpstreamError(f"{url}: {type(exc).__name__}", retryable=isinstance(exc, httpx.TransportError))


def _mtime(header: str | None) -> float:
    if not header:
        return 0.0
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return 0.0
