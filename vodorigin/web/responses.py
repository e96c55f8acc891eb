"""Packager outputs -> HTTP responses: Content-Length always, Range everywhere, HEAD without media reads."""

from __future__ import annotations

import email.utils
import hashlib
import json
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from vodorigin.errors import RangeNotSatisfiable, VodError
from vodorigin.media.frames import ByteRange
from vodorigin.media.model import SourceIdentity
from vodorigin.origin import Origin
from vodorigin.packagers.output import Document, FileParts, MediaSegment, Output
from vodorigin.web.ranges import parse_range


def error_response(error: VodError) -> Response:
    body = json.dumps({"error": error.message, "status": error.status}).encode()
    headers = {"content-length": str(len(body)), "cache-control": "no-store"}
    if isinstance(error, RangeNotSatisfiable):
        headers["content-range"] = f"bytes */{error.size}"
    return Response(body, status_code=error.status, media_type="application/json", headers=headers)


def _identity_headers(sources: tuple[SourceIdentity, ...], url_path: str) -> dict[str, str]:
    """Last-Modified from the newest source, a strong ETag over the sources and the URL."""
    digest = hashlib.sha1(url_path.encode())
    for source in sources:
        digest.update(f"{source.path}\0{source.size}\0{source.etag}".encode())
    newest = max(s.mtime for s in sources)
    return {
        "etag": f'"{digest.hexdigest()[:32]}"',
        "last-modified": email.utils.formatdate(newest, usegmt=True),
        "accept-ranges": "bytes",
    }


def _sources(output: Output) -> tuple[SourceIdentity, ...]:
    return output.sources if isinstance(output, Document) else (output.source,)


def _size(output: Output) -> int:
    return len(output.body) if isinstance(output, Document) else output.size


async def build_response(output: Output, origin: Origin, method: str, range_header: str | None,
                         url_path: str) -> Response:
    size = _size(output)
    selected = parse_range(range_header, size)
    first, last = selected if selected else (0, size - 1)
    headers = _identity_headers(_sources(output), url_path)
    headers["content-length"] = str(last - first + 1 if size else 0)
    status = 200
    if selected is not None:
        status = 206
        headers["content-range"] = f"bytes {first}-{last}/{size}"
    if method == "HEAD":
        return Response(b"", status, headers=headers, media_type=output.content_type)
    if isinstance(output, FileParts):
        body = _stream_parts(output, origin, first, last + 1)
        return StreamingResponse(body, status, headers=headers, media_type=output.content_type)
    if isinstance(output, MediaSegment):
        data = output.render(await origin.read_ranges(output.source, output.ranges))
    else:
        data = output.body
    body_bytes = data if selected is None else data[first : last + 1]
    return Response(body_bytes, status, headers=headers, media_type=output.content_type)


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
