"""Packager outputs -> HTTP responses: Content-Length always, Range everywhere, HEAD without media
reads, validators and caching headers on every media response (web/http_cache.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vodorigin.cache import CachedResponse
from vodorigin.errors import RangeNotSatisfiable, VodError
from vodorigin.media.frames import ByteRange
from vodorigin.media.model import SourceIdentity
from vodorigin.origin import STREAM_CHUNK, Origin
from vodorigin.packagers.output import FileParts, MediaSegment
from vodorigin.urls import PARSED_LENGTH
from vodorigin.web.http_cache import (
    HttpPolicy,
    accepts_gzip,
    gzip_etag,
    http_date,
    not_modified,
    range_still_valid,
)
from vodorigin.web.ranges import parse_range
from vodorigin.web.server import FILE_SPAN, FileSpan

log = logging.getLogger("vodorigin")

Content = CachedResponse | MediaSegment | FileParts  # a body in hand, one to render, one to stream


def error_response(error: VodError) -> Response:
    body = json.dumps({"error": error.message, "status": error.status}).encode()
    headers = {"content-length": str(len(body)), "cache-control": "no-store"}
    if isinstance(error, RangeNotSatisfiable):
        headers["content-range"] = f"bytes */{error.size}"
    return Response(body, status_code=error.status, media_type="application/json", headers=headers)


def refused(method: str, path: str, error: VodError) -> Response:
    """A media request's refusal, logged as such and answered as an error response."""
    log.info("%s %s -> %d %s", method, path, error.status, error.message)
    return error_response(error)


@dataclass(frozen=True, slots=True)
class Validators:
    """A strong ETag over the sources and the URL; Last-Modified from the newest source."""

    etag: str
    last_modified: float

    @classmethod
    def of(cls, sources: tuple[SourceIdentity, ...], url_path: str, last_modified: float | None = None
           ) -> Validators:
        """last_modified: a fixed date to announce (vod_last_modified), else the newest source's.
        Remembered for short paths (an uncached response asks for them on every request)."""
        derive = _remembered_validators if len(url_path) <= PARSED_LENGTH else _validators
        return derive(sources, url_path, last_modified)


def _validators(sources: tuple[SourceIdentity, ...], url_path: str, last_modified: float | None
                ) -> Validators:
    digest = hashlib.sha1(url_path.encode())
    for source in sources:
        digest.update(f"{source.path}\0{source.size}\0{source.etag}".encode())
    return Validators(f'"{digest.hexdigest()[:32]}"', last_modified or max(s.mtime for s in sources))


_remembered_validators = functools.lru_cache(maxsize=4096)(_validators)


REQUEST_HEADERS = (b"range", b"if-range", b"if-none-match", b"if-modified-since", b"accept-encoding")


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers a media response depends on (the first of each), from the ASGI scope's
    list in one pass."""
    found: dict[str, str] = {}
    for name, value in raw:
        if name in REQUEST_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


class Reply:
    """A response whose head is already an ASGI header list: sent as it is (no Response object)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class FileReply:
    """A response whose body is one range of a stored file. Where the server takes file ranges
    as bodies (web/server.py's FileSpan) and the page cache holds the range, the file's bytes go
    to the socket without passing through Python, as nginx sends a static file; else the range
    is read and sent as bytes. Either way the range is known to be readable before the head goes."""

    __slots__ = ("status", "headers", "origin", "source", "offset", "count")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], origin: Origin,
                 source: SourceIdentity, offset: int, count: int) -> None:
        self.status, self.headers = status, headers
        self.origin, self.source, self.offset, self.count = origin, source, offset, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
        zerocopy = FILE_SPAN in (scope.get("extensions") or ())
        try:  # the file is opened (its identity checked again) and read before the head goes, so
            # that what fails there is an error response; nothing after the head raises a VodError
            with self.origin.cached_file(self.source, self.offset, self.count) if zerocopy else \
                    contextlib.nullcontext() as fd:
                body = FileSpan(fd, self.offset, self.count) if fd is not None else \
                    await self.origin.read(self.source, self.offset, self.count)
                await send(start)
                await send({"type": "http.response.body", "body": body})
        except VodError as error:
            await refused(scope["method"], scope["path"], error)(scope, receive, send)


class MediaResponder:
    """Builds the responses of one request class under the application's HTTP policy.

    The validators are derived only when a response needs them: a whole cached body is sent with
    the head kept in its cache entry (only Expires changes), so a request without conditions or
    Range reaches its body without hashing or formatting anything."""

    def __init__(self, policy: HttpPolicy, request_class: str, identities: tuple[SourceIdentity, ...],
                 url_path: str, request_headers: Mapping[str, str], compressible_class: bool) -> None:
        self.policy = policy
        self.request_class = request_class
        self.identities = identities
        self.url_path = url_path
        self.request_headers = request_headers
        self.compressible = compressible_class and policy.gzip_manifests
        self._validators: Validators | None = None

    @property
    def validators(self) -> Validators:
        if self._validators is None:
            self._validators = Validators.of(self.identities, self.url_path, self.policy.last_modified)
        return self._validators

    def headers(self) -> dict[str, str]:
        """What every media response of the request carries: validators and caching headers."""
        headers = {"etag": self.validators.etag, "last-modified": http_date(self.validators.last_modified),
                   "accept-ranges": "bytes", **self.policy.caching_headers(self.request_class)}
        if self.compressible:
            headers["vary"] = "Accept-Encoding"
        return headers

    def not_modified(self) -> Response | None:
        """A 304 when the client's copy is current (checked before anything is built or read)."""
        request = self.request_headers
        if "if-none-match" not in request and "if-modified-since" not in request:
            return None
        etags = [self.validators.etag, gzip_etag(self.validators.etag)] if self.compressible else \
            [self.validators.etag]
        if any(not_modified(request, etag, self.validators.last_modified) for etag in etags):
            headers = {k: v for k, v in self.headers().items() if k != "accept-ranges"}
            if self.compressible and accepts_gzip(request.get("accept-encoding")):
                headers["etag"] = gzip_etag(self.validators.etag)
            return Response(b"", 304, headers=headers)
        return None

    async def respond(self, content: Content, origin: Origin, method: str) -> ASGIApp:
        range_header = self.request_headers.get("range")
        if range_header is not None and not range_still_valid(
                self.request_headers.get("if-range"), self.validators.etag, self.validators.last_modified):
            range_header = None
        if isinstance(content, CachedResponse) and range_header is None:
            return self._whole(content, method)
        headers = self.headers()
        body: bytes | None = None
        if isinstance(content, CachedResponse):
            body = content.body
        if isinstance(content, MediaSegment) and content.size is None:  # known once rendered
            body = await render(content, origin)
        size = len(body) if body is not None else content.size
        assert size is not None
        selected = parse_range(range_header, size)
        first, last = selected if selected else (0, size - 1)
        headers["content-length"] = str(last - first + 1 if size else 0)
        status = 200
        if selected is not None:
            status = 206
            headers["content-range"] = f"bytes {first}-{last}/{size}"
        if method == "HEAD":
            return Reply(status, _head(headers, content.content_type), b"")
        if isinstance(content, FileParts):
            if last + 1 - first <= STREAM_CHUNK:  # a range players and CDNs ask for: one read, one body
                if len(content.parts) == 1 and isinstance(part := content.parts[0], ByteRange):
                    return FileReply(status, _head(headers, content.content_type), origin, content.source,
                                     part.offset + first, last + 1 - first)  # a range of the file as it is
                body = b"".join([chunk async for chunk in _stream_parts(content, origin, first, last + 1)])
                return Reply(status, _head(headers, content.content_type), body)
            stream = _stream_parts(content, origin, first, last + 1)
            return StreamingResponse(stream, status, headers=headers, media_type=content.content_type)
        if body is None and isinstance(content, MediaSegment):
            body = await render(content, origin)
        assert body is not None
        body = body if selected is None else body[first : last + 1]
        return Reply(status, _head(headers, content.content_type), body)

    def _whole(self, content: CachedResponse, method: str) -> Reply:
        """The whole body of a cached response, gzipped when it has that form and the client takes
        it; the head is built once per form and kept with the entry."""
        gzipped = content.gzipped is not None and accepts_gzip(self.request_headers.get("accept-encoding"))
        body = content.gzipped if gzipped and content.gzipped is not None else content.body
        head = content.heads.get(gzipped)
        if head is None:
            headers = {name: value for name, value in self.headers().items() if name != "expires"}
            if gzipped:
                headers["etag"] = gzip_etag(headers["etag"])
                headers["content-encoding"] = "gzip"
            headers["content-length"] = str(len(body))
            head = content.heads[gzipped] = _head(headers, content.content_type)
        return Reply(200, head + self.policy.expires(self.request_class), b"" if method == "HEAD" else body)


def _head(headers: dict[str, str], media_type: str) -> list[tuple[bytes, bytes]]:
    """The headers as an ASGI list, with the Content-Type of the media type as Starlette's
    Response writes it (text types in UTF-8)."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type = f"{media_type}; charset=utf-8"
    pairs = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    pairs.append((b"content-type", media_type.encode("latin-1")))
    return pairs


# Segments larger than this are muxed in a worker thread, off the event loop. Below it they are muxed
# inline: with the GIL a thread adds no parallelism, and handing it back and forth cost a quarter
# to a third of the throughput (README: Performance); 8 MiB take about 15 ms.
OFFLOAD_BYTES = 8 << 20


async def render(segment: MediaSegment, origin: Origin) -> bytes:
    source = await origin.read_ranges(segment.source, segment.ranges)
    if sum(r.length for r in segment.ranges) > OFFLOAD_BYTES:
        return await asyncio.to_thread(segment.render, source)
    return segment.render(source)


async def _stream_parts(output: FileParts, origin: Origin, start: int, stop: int) -> AsyncIterator[bytes]:
    """The bytes [start, stop) of a FileParts body, reading only the source ranges they cover."""
    position = 0
    for part in output.parts:
        length = len(part) if isinstance(part, bytes) else part.length
        low, high = max(start, position), min(stop, position + length)
        if low < high:
            if isinstance(part, bytes):
                yield part[low - position : high - position]
            else:
                assert isinstance(part, ByteRange)
                async for chunk in origin.stream(output.source, part.offset + low - position, high - low):
                    yield chunk
        position += length
