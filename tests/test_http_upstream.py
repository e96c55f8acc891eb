"""The HTTP upstream backend against a small fault-injecting server on 127.0.0.1.

The first path component picks the upstream's behaviour: ok (honours Range), secret (ok only with
the x-origin-secret header), slow (answers after 30 s), flaky (500 on the first request for each
Range, then ok), reset (drops the connection), short (promises more bytes than it sends),
norange (200 with the whole object), gone (416), denied (403).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors
from vodorigin.settings import Settings

SECRET = "s3cr3t"


class FaultServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.requests: Counter[str] = Counter()
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


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def settings_for(upstream: FaultServer, mode: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"storage": "http", "http_base_url": f"{upstream.base}/{mode}",
                                 "upstream_timeout": 2.0, "upstream_retries": 2, "upstream_backoff": 0.01,
                                 **LIVE_SETTINGS}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_a_good_upstream_serves_what_local_storage_serves(upstream: FaultServer) -> None:
    local = Settings(media_root=str(FIXTURES), **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(settings_for(upstream, "ok")) as remote, LiveServer(local) as reference:
        assert ffmpeg_read_errors(f"{remote.base}/hls/moov_end.mp4/master.m3u8") == ""
        for path in ("/hls/bframes.mp4/seg-2-v1-a1.ts", "/dash/hevc.mp4/fragment-1-v1.m4s",
                     "/hls/bframes.mp4/master.m3u8"):
            ours, theirs = httpx.get(remote.base + path), httpx.get(reference.base + path)
            assert ours.status_code == 200 and ours.content == theirs.content, path


def test_extra_headers_reach_the_upstream(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "secret")) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 403
    with LiveServer(settings_for(upstream, "secret", http_headers={"x-origin-secret": SECRET})) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 200


@pytest.mark.parametrize(("mode", "status"), [("denied", 403), ("reset", 502), ("short", 502),
                                              ("norange", 502), ("gone", 502)])
def test_faults_map_to_statuses_and_the_server_serves_on(upstream: FaultServer, mode: str,
                                                          status: int) -> None:
    with LiveServer(settings_for(upstream, mode)) as server:
        response = httpx.get(f"{server.base}/hls/bframes.mp4/index.m3u8", timeout=30)
        assert response.status_code == status, response.text
        assert response.json()["status"] == status
        assert httpx.get(f"{server.base}/health").status_code == 200
        assert httpx.get(f"{server.base}/hls/nothing.mp4/index.m3u8").status_code == 404


def test_an_upstream_ignoring_range_is_not_read_whole(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "norange")) as server:
        assert httpx.get(f"{server.base}/hls/clip_360p.mp4/index.m3u8").status_code == 502
    time.sleep(0.3)
    assert upstream.body_bytes_sent["clip_360p.mp4"] < (FIXTURES / "clip_360p.mp4").stat().st_size // 2


def test_a_500_is_retried(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "flaky")) as server:
        assert httpx.get(f"{server.base}/hls/irregular_gop.mp4/index.m3u8").status_code == 200
        counters = server.server.config.app.state.origin.storage.counters
        assert counters.retries >= 1
    reads = [k for k in upstream.requests if k.startswith("GET /flaky/irregular_gop.mp4")]
    assert reads and all(upstream.requests[k] == 2 for k in reads)  # a 500, then the answer


def test_a_slow_upstream_is_a_504_within_the_deadline(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "slow", upstream_timeout=1.0)) as server:
        start = time.monotonic()
        response = httpx.get(f"{server.base}/hls/bframes.mp4/index.m3u8", timeout=30)
        elapsed = time.monotonic() - start
        assert response.status_code == 504
        assert elapsed < 10  # the deadline (1 s) bounds it, far below the upstream's 30 s
        assert httpx.get(f"{server.base}/health").status_code == 200
