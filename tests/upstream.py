"""A small HTTP server on 127.0.0.1 standing in for upstreams: a media origin that honours Range
(with faults on demand) and a mapping service.

The first path component picks the behaviour: ok (honours Range), secret (ok only with the
x-origin-secret header), slow (answers after 30 s), flaky (500 on the first request for each Range,
then ok), reset (drops the connection), short (promises more bytes than it sends), norange (200 with
the whole object), gone (416), denied (403); documents added to `documents` are served whole at
their path (a mapping service's JSON), and paths in `statuses` answer that status.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

from tests.conftest import FIXTURES

SECRET = "s3cr3t"


class FaultServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.requests: Counter[str] = Counter()
        self.documents: dict[str, bytes] = {}  # path -> body, served whole (200)
        self.statuses: dict[str, int] = {}  # path -> an error status it answers
        self.body_bytes_sent: Counter[str] = Counter()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.started.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def __enter__(self) -> FaultServer:
        self.thread.start()
        self.started.wait(5)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                fields = (line.partition(":") for line in lines[1:] if line)
                headers = {name.lower(): value.strip() for name, _, value in fields}
                if not await self._respond(method, target, headers, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, target: str, headers: dict[str, str],
                       writer: asyncio.StreamWriter) -> bool:
        mode, _, name = target.lstrip("/").partition("/")
        self.requests[f"{method} {target} {headers.get('range', '')}"] += 1
        if target in self.statuses:
            return self._send(writer, self.statuses[target], {}, b"failed")
        if target in self.documents:
            return self._send(writer, 200, {"content-type": "application/json"}, self.documents[target])
        path = FIXTURES / name
        if not path.is_file():
            return self._send(writer, 404, {}, b"")
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", headers.get("range", ""))
        if mode == "denied" or (mode == "secret" and headers.get("x-origin-secret") != SECRET):
            return self._send(writer, 403, {}, b"")
        if mode == "slow":
            await asyncio.sleep(30)
        if mode == "flaky" and self.requests[f"{method} {target} {headers.get('range', '')}"] == 1:
            return self._send(writer, 500, {}, b"")
        if mode == "reset" and method == "GET":
            writer.transport.abort()
            return False
        if mode == "gone" and method == "GET":
            return self._send(writer, 416, {"content-range": f"bytes */{len(data)}"}, b"")
        etag = {"etag": f'"{len(data):x}"', "last-modified": "Tue, 24 Nov 2026 10:00:00 GMT"}
        if method == "HEAD":
            fields = f"content-length: {len(data)}\r\netag: {etag['etag']}\r\n"
            writer.write(f"HTTP/1.1 200 OK\r\n{fields}\r\n".encode())
            return True
        if mode == "norange" or match is None:
            return self._send(writer, 200, etag, data, name)
        start, end = int(match[1]), int(match[2])
        body = data[start : end + 1]
        extra = {**etag, "content-range": f"bytes {start}-{end}/{len(data)}"}
        if mode == "short":
            header = f"HTTP/1.1 206 Partial Content\r\ncontent-length: {len(body)}\r\n"
            header += "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "\r\n"
            writer.write(header.encode() + body[: len(body) // 2])
            await writer.drain()
            return False  # and close: the body ends early
        return self._send(writer, 206, extra, body, name)

    def _send(self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes,
              name: str = "") -> bool:
        header = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
        header += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(header.encode())
        if status == 200 and len(body) > 65536:  # a whole object: send it lazily, as a real server
            writer.write(body[:65536])
            self.body_bytes_sent[name] += 65536
            asyncio.ensure_future(self._rest(writer, body[65536:], name))
            return False
        writer.write(body)
        self.body_bytes_sent[name] += len(body)
        return True

    async def _rest(self, writer: asyncio.StreamWriter, rest: bytes, name: str) -> None:
        for start in range(0, len(rest), 65536):
            if writer.is_closing():
                return
            await asyncio.sleep(0.01)
            writer.write(rest[start : start + 65536])
            self.body_bytes_sent[name] += len(rest[start : start + 65536])
