"""The HTTP floor for bench/load.py: a bare ASGI app under uvicorn (or granian: `floor.py PORT granian`)
with vodorigin's settings for that server (under uvicorn, vodorigin's HTTP protocol, which sends a
response's head with its body: web/server.py).

It fetches once what FLOOR_URL answers (with FLOOR_RANGE as Range) and serves those bytes from
memory to every request with the same Content-Type; with FLOOR_PREAD=file:offset:length it reads
that range with one os.pread per request instead (the I/O floor of /pd). /health answers ok.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx
import uvicorn

from vodorigin.settings import Settings
from vodorigin.web.server import granian_server, uvicorn_options


def make_app() -> Any:
    headers = {"range": os.environ["FLOOR_RANGE"]} if os.environ.get("FLOOR_RANGE") else {}
    answer = httpx.get(os.environ["FLOOR_URL"], headers=headers)
    body, status = answer.content, answer.status_code
    content_type = answer.headers.get("content-type", "application/octet-stream").encode()
    pread = os.environ.get("FLOOR_PREAD", "")
    descriptor, offset, length = -1, 0, 0
    if pread:
        path, offset_text, length_text = pread.rsplit(":", 2)
        descriptor, offset, length = os.open(path, os.O_RDONLY), int(offset_text), int(length_text)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            payload, code, kind = b"ok\n", 200, b"text/plain"
        else:
            payload = os.pread(descriptor, length, offset) if pread else body
            code, kind = status, content_type
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    port = int(sys.argv[1])
    if sys.argv[2:] == ["granian"]:  # as vodorigin serve --server granian runs
        settings = Settings(host="127.0.0.1", port=port, log_level="warning")
        granian_server(settings, "bench.floor:make_app").serve()
        return
    uvicorn.run(make_app(), host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(Settings()))


if __name__ == "__main__":
    main()
